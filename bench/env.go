package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// cloud is the two-cloud emulator on a loopback port of the bench process.
type cloud struct {
	*emulator.Emulator
	URL  string
	srv  *http.Server
	done chan error
}

func startCloud(opts ...emulator.Option) (*cloud, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	emu, err := emulator.New(opts...)
	if err != nil {
		l.Close()
		return nil, err
	}
	c := &cloud{Emulator: emu, URL: "http://" + l.Addr().String(), done: make(chan error, 1)}
	c.srv = &http.Server{Handler: c.Emulator, ReadHeaderTimeout: 10 * time.Second}
	go func() { c.done <- c.srv.Serve(l) }()
	return c, nil
}

func (c *cloud) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.srv.Shutdown(ctx)
	if err := <-c.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logf("emulator: %v", err)
	}
}

// aliyun is a Dyplsapi client of the emulator, configured as the functions
// configure theirs from the environment.
func (c *cloud) aliyun() (*aliyun.Client, error) {
	return aliyun.New(aliyun.Config{
		AccessKeyID:     emulator.DefaultAccessKeyID,
		AccessKeySecret: emulator.DefaultAccessKeySecret,
		Endpoint:        c.URL,
	})
}

// aliyunEnv is a Dyplsapi function's environment for this emulator.
func (c *cloud) aliyunEnv() []string {
	return []string{
		aliyun.EnvAccessKeyID + "=" + emulator.DefaultAccessKeyID,
		aliyun.EnvAccessKeySecret + "=" + emulator.DefaultAccessKeySecret,
		aliyun.EnvEndpoint + "=" + c.URL,
	}
}

// volcEnv is a VMS function's environment for this emulator.
func (c *cloud) volcEnv() []string {
	return []string{
		volcengine.EnvAccessKey + "=" + emulator.DefaultAccessKeyID,
		volcengine.EnvSecretKey + "=" + emulator.DefaultAccessKeySecret,
		volcengine.EnvEndpoint + "=" + c.URL,
	}
}

// stock puts n numbers of spec 2 on sale, spread over cities of perCity
// numbers each, and returns the cities. series (0-9) keeps the numbers and
// cities of several calls apart. The emulator scans the stock and sorts a
// city's numbers on every call, so many small cities keep it from being the
// bottleneck of what is measured.
func (c *cloud) stock(series, n, perCity int) ([]string, error) {
	var cities []string
	var nums []dypls.Number
	for i := 0; len(nums) < n; i++ {
		city := cityName(series, i)
		cities = append(cities, city)
		for k := 0; k < perCity && len(nums) < n; k++ {
			nums = append(nums, dypls.Number{
				SecretNo: fmt.Sprintf("13%d%05d%04d", series, i, k),
				SpecID:   dypls.SpecCarrier,
				City:     city,
				Province: "基准",
				Vendor:   dypls.VendorMobile,
			})
		}
	}
	return cities, c.Dypls().AddNumbers(nums...)
}

// cityName is a city name (letters only) unique per series and i.
func cityName(series, i int) string {
	b := []byte{'B', 'e', 'n', 'c', 'h', byte('A' + series)}
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			return string(b)
		}
	}
}
