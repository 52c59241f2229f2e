package volcengine_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// newEmulator serves the two-cloud emulator on a loopback port; the caller
// closes it.
func newEmulator() *httptest.Server {
	emu, err := emulator.New()
	if err != nil {
		panic(err)
	}
	return httptest.NewServer(emu)
}

// The client against the emulator (github.com/xnum-dev/xnum/pkg/provider/emulator),
// which answers as VMS does and checks the signature the SDK makes: one page
// of the privacy-number pools.
func Example() {
	srv := newEmulator()
	defer srv.Close()
	c, err := volcengine.New(volcengine.Config{
		AccessKeyID:     emulator.DefaultAccessKeyID,
		SecretAccessKey: emulator.DefaultAccessKeySecret,
		Endpoint:        srv.URL, // default: https://cloud-vms.volcengineapi.com
	})
	if err != nil {
		panic(err)
	}
	page, err := c.ListPools(context.Background(), provider.PoolQuery{ServiceType: 200, Limit: 2})
	if err != nil {
		panic(err)
	}
	fmt.Println(page.Total, "pools; the first", len(page.Records), "of them:")
	for _, p := range page.Records {
		fmt.Println(p.PoolNo, p.Name, p.SubServiceTypeName, p.NumberCount)
	}
	// Output:
	// 13 pools; the first 2 of them:
	// NP162300000000202947 骑手隐私号池-杭州 AXB 12
	// NP162300000000210866 骑手隐私号池-上海 AXB 9
}

// AllPools reads every page: offset += limit until offset >= total.
func ExampleClient_AllPools() {
	srv := newEmulator()
	defer srv.Close()
	c, err := volcengine.New(volcengine.Config{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultAccessKeySecret, Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	pools, numbers := 0, 0
	for p, err := range c.AllPools(context.Background(), provider.PoolQuery{Limit: 5}) {
		if err != nil {
			panic(err)
		}
		pools++
		numbers += p.NumberCount
	}
	fmt.Println(pools, "pools,", numbers, "numbers")
	// Output: 26 pools, 139 numbers
}

// The configuration a function reads from its environment; the lookup here
// is a map, in a program it is os.LookupEnv.
func ExampleConfigFromEnv() {
	env := map[string]string{
		volcengine.EnvAccessKey:  "AKLTExampleKey",
		volcengine.EnvSecretKey:  "example-secret",
		volcengine.EnvMaxRetries: "0", // no retries
	}
	cfg, err := volcengine.ConfigFromEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	fmt.Println(cfg, err)
	// Output: volcengine.Config{AccessKeyID: AKLTExampleKey, Region: cn-beijing, Endpoint: https://cloud-vms.volcengineapi.com, Timeout: 10s, MaxRetries: -1, SecretAccessKey: [redacted], SessionToken: ""} <nil>
}
