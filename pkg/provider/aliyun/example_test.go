package aliyun_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
)

// The client against the emulator (github.com/xnum-dev/xnum/pkg/provider/emulator),
// which answers as Dyplsapi does and checks the signature the SDK makes:
// how many virtual-operator numbers are left in 杭州, buy one, and ask again.
func Example() {
	emu, err := emulator.New()
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()

	c, err := aliyun.New(aliyun.Config{
		AccessKeyID:     emulator.DefaultAccessKeyID,
		AccessKeySecret: emulator.DefaultAccessKeySecret,
		Endpoint:        srv.URL, // default: https://dyplsapi.aliyuncs.com
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	q := provider.RemainQuery{City: "杭州", SpecID: provider.SpecVirtual}
	before, err := c.Remain(ctx, q)
	if err != nil {
		panic(err)
	}
	bought, err := c.Buy(ctx, provider.BuyRequest{PoolKey: dypls.DefaultPoolKey, City: "杭州", SpecID: provider.SpecVirtual})
	if err != nil {
		panic(err)
	}
	after, err := c.Remain(ctx, q)
	if err != nil {
		panic(err)
	}
	fmt.Println(before.Amount, bought.SecretNo, after.Amount)
	// Output: 20 17000100000 19
}

// The configuration a function reads from its environment; the lookup here
// is a map, in a program it is os.LookupEnv. Errors name the variable and
// never show a secret.
func ExampleConfigFromEnv() {
	env := map[string]string{
		aliyun.EnvAccessKeyID:     "LTAI5tExampleKey",
		aliyun.EnvAccessKeySecret: "example-secret",
		aliyun.EnvRegion:          "cn-shanghai",
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	cfg, err := aliyun.ConfigFromEnv(lookup)
	fmt.Println(cfg, cfg.QueryAttempts, err)

	env[aliyun.EnvReadTimeout] = "10" // no unit
	_, err = aliyun.ConfigFromEnv(lookup)
	fmt.Println(err)
	// Output:
	// aliyun.Config{AccessKeyID: LTAI5tExampleKey, Region: cn-shanghai, Endpoint: https://dyplsapi.aliyuncs.com} 3 <nil>
	// config: XNUM_ALIYUN_READ_TIMEOUT must be a duration such as 5s, not "10"
}

// On FC the function role's temporary credentials come with each request;
// a client configured without a key uses the ones its call's context
// carries.
func Example_perRequestCredentials() {
	emu, err := emulator.New(emulator.WithSTSToken("STS.NRoleKey", "role-secret", "role-token"))
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	c, err := aliyun.New(aliyun.Config{Endpoint: srv.URL})
	if err != nil {
		panic(err)
	}
	q := provider.RemainQuery{City: provider.CityNationwide, SpecID: provider.SpecCarrier}

	_, err = c.Remain(context.Background(), q)
	fmt.Println(errors.Is(err, provider.ErrUnauthorized))

	ctx := provider.ContextWithCredentials(context.Background(), provider.Credentials{
		AccessKeyID: "STS.NRoleKey", AccessKeySecret: "role-secret", SecurityToken: "role-token",
	})
	r, err := c.Remain(ctx, q)
	fmt.Println(r.Amount, err)
	// Output:
	// true
	// 190 <nil>
}
