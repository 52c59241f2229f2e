// Package emulatortest starts the two-cloud emulator on a loopback port for
// a test, as net/http/httptest does for a handler, and hands out provider
// configs that point at it.
package emulatortest

import (
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// Server is a running emulator.
type Server struct {
	*emulator.Emulator
	// URL is http://127.0.0.1:port.
	URL string

	stocked atomic.Int64 // cities Stock made, to keep numbers apart
}

// NewServer starts an emulator built with opts (default key pair unless
// emulator.WithKey) and closes it when the test ends.
func NewServer(t testing.TB, opts ...emulator.Option) *Server {
	t.Helper()
	e, err := emulator.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		e.Close()
		srv.Close()
	})
	return &Server{Emulator: e, URL: srv.URL}
}

// AliyunConfig is a Dyplsapi client config for this emulator with the default
// key pair; tests change fields as they need.
func (s *Server) AliyunConfig() aliyun.Config {
	return aliyun.Config{
		AccessKeyID:     emulator.DefaultAccessKeyID,
		AccessKeySecret: emulator.DefaultAccessKeySecret,
		Endpoint:        s.URL,
	}
}

// VolcengineConfig is a VMS client config for this emulator with the default
// key pair.
func (s *Server) VolcengineConfig() volcengine.Config {
	return volcengine.Config{
		AccessKeyID:     emulator.DefaultAccessKeyID,
		SecretAccessKey: emulator.DefaultAccessKeySecret,
		Endpoint:        s.URL,
	}
}

// AliyunEnv is the environment of a function that reads its Dyplsapi client
// from the environment (aliyun.ConfigFromEnv), pointed at this emulator.
func (s *Server) AliyunEnv() map[string]string {
	return map[string]string{
		aliyun.EnvAccessKeyID:     emulator.DefaultAccessKeyID,
		aliyun.EnvAccessKeySecret: emulator.DefaultAccessKeySecret,
		aliyun.EnvEndpoint:        s.URL,
	}
}

// VolcengineEnv is AliyunEnv for a VMS client (volcengine.ConfigFromEnv).
func (s *Server) VolcengineEnv() map[string]string {
	return map[string]string{
		volcengine.EnvAccessKey: emulator.DefaultAccessKeyID,
		volcengine.EnvSecretKey: emulator.DefaultAccessKeySecret,
		volcengine.EnvEndpoint:  s.URL,
	}
}

// Aliyun is a Dyplsapi client on AliyunConfig; it fails the test if the
// config is refused.
func (s *Server) Aliyun(t testing.TB) *aliyun.Client {
	t.Helper()
	c, err := aliyun.New(s.AliyunConfig())
	if err != nil {
		t.Fatalf("aliyun.New: %v", err)
	}
	return c
}

// Volcengine is a VMS client on VolcengineConfig.
func (s *Server) Volcengine(t testing.TB) *volcengine.Client {
	t.Helper()
	c, err := volcengine.New(s.VolcengineConfig())
	if err != nil {
		t.Fatalf("volcengine.New: %v", err)
	}
	return c
}

// Stock puts perCity carrier numbers (specId 2) on sale in each of cities
// new cities, named after prefix, and returns their names: a test that buys
// many numbers gives each order a city with enough of them.
func (s *Server) Stock(t testing.TB, prefix string, cities, perCity int) []string {
	t.Helper()
	var names []string
	var nums []dypls.Number
	first := s.stocked.Add(int64(cities)) - int64(cities)
	for i := range cities {
		city := fmt.Sprintf("%s%c%c", prefix, 'A'+i/26%26, 'a'+i%26)
		names = append(names, city)
		for k := range perCity {
			nums = append(nums, dypls.Number{SecretNo: fmt.Sprintf("1399%03d%05d", first+int64(i), k), SpecID: dypls.SpecCarrier,
				City: city, Province: prefix, Vendor: dypls.VendorMobile})
		}
	}
	if err := s.Dypls().AddNumbers(nums...); err != nil {
		t.Fatalf("emulatortest: stock: %v", err)
	}
	return names
}
