package config_test

import (
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/config"
)

func TestWakeup(t *testing.T) {
	w, err := config.LoadWakeup(env(nil))
	if err != nil || w.Enabled() {
		t.Fatalf("unset: %+v %v, want no wake-up", w, err)
	}
	onFC := map[string]string{config.BuyWorkerFunction: "xnum-buy-worker", config.FCAccountID: "1234567890", config.FCRegion: "cn-shanghai"}
	cases := []struct {
		name     string
		env      map[string]string
		endpoint string
		bad      string
	}{
		{"on FC", onFC, "https://1234567890.cn-shanghai.fc.aliyuncs.com", ""},
		{"endpoint given", with(onFC, config.FCEndpoint, "https://1234567890.cn-shanghai-internal.fc.aliyuncs.com/"),
			"https://1234567890.cn-shanghai-internal.fc.aliyuncs.com", ""},
		{"outside FC with an endpoint", map[string]string{config.BuyWorkerFunction: "w_1", config.FCEndpoint: "http://127.0.0.1:9100"},
			"http://127.0.0.1:9100", ""},
		{"outside FC without one", map[string]string{config.BuyWorkerFunction: "w"}, "", config.FCEndpoint},
		{"bad function name", with(onFC, config.BuyWorkerFunction, "1-worker"), "", config.BuyWorkerFunction},
		{"function name too long", with(onFC, config.BuyWorkerFunction, "w"+strings.Repeat("x", 128)), "", config.BuyWorkerFunction},
		{"bad endpoint", with(onFC, config.FCEndpoint, "fc.aliyuncs.com"), "", config.FCEndpoint},
		{"bad account", with(onFC, config.FCAccountID, "12ab"), "", config.FCAccountID},
		{"bad region", with(onFC, config.FCRegion, "cn hangzhou"), "", config.FCRegion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := config.LoadWakeup(env(tc.env))
			if tc.bad != "" {
				checkErr(t, err, tc.bad)
				return
			}
			if err != nil || !w.Enabled() || w.Endpoint != tc.endpoint || w.Function != tc.env[config.BuyWorkerFunction] {
				t.Fatalf("got %+v %v, want endpoint %s", w, err, tc.endpoint)
			}
		})
	}
}
