package config_test

import (
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/testutil"
)

func TestWakeup(t *testing.T) {
	w, err := config.LoadWakeup(testutil.Env{}.Lookup)
	if err != nil || w.Enabled() {
		t.Fatalf("unset: %+v %v, want no wake-up", w, err)
	}
	onFC := testutil.Env{config.BuyWorkerFunction: "xnum-buy-worker", config.FCAccountID: "1234567890", config.FCRegion: "cn-shanghai"}
	cases := []struct {
		name     string
		env      testutil.Env
		endpoint string
		bad      string
	}{
		{"on FC", onFC, "https://1234567890.cn-shanghai.fc.aliyuncs.com", ""},
		{"endpoint given", onFC.With(config.FCEndpoint, "https://1234567890.cn-shanghai-internal.fc.aliyuncs.com/"),
			"https://1234567890.cn-shanghai-internal.fc.aliyuncs.com", ""},
		{"outside FC with an endpoint", testutil.Env{config.BuyWorkerFunction: "w_1", config.FCEndpoint: "http://127.0.0.1:9100"},
			"http://127.0.0.1:9100", ""},
		{"outside FC without one", testutil.Env{config.BuyWorkerFunction: "w"}, "", config.FCEndpoint},
		{"bad function name", onFC.With(config.BuyWorkerFunction, "1-worker"), "", config.BuyWorkerFunction},
		{"function name too long", onFC.With(config.BuyWorkerFunction, "w"+strings.Repeat("x", 128)), "", config.BuyWorkerFunction},
		{"bad endpoint", onFC.With(config.FCEndpoint, "fc.aliyuncs.com"), "", config.FCEndpoint},
		{"bad account", onFC.With(config.FCAccountID, "12ab"), "", config.FCAccountID},
		{"bad region", onFC.With(config.FCRegion, "cn hangzhou"), "", config.FCRegion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := config.LoadWakeup(tc.env.Lookup)
			if tc.bad != "" {
				testutil.WantEnvError(t, err, tc.bad, tc.env)
				return
			}
			if err != nil || !w.Enabled() || w.Endpoint != tc.endpoint || w.Function != tc.env[config.BuyWorkerFunction] {
				t.Fatalf("got %+v %v, want endpoint %s", w, err, tc.endpoint)
			}
		})
	}
}
