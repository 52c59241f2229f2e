package buy_test

import (
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/buy"
	"github.com/xnum-dev/xnum/internal/testutil"
)

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  testutil.Env
		want buy.Config
		bad  string // the variable the error names; "" for none
	}{
		{"defaults", nil, buy.Config{QPS: buy.DefaultQPS, Consumer: true}, ""},
		{"no limit", testutil.Env{buy.EnvQPS: "0"}, buy.Config{Consumer: true}, ""},
		{"fractional QPS", testutil.Env{buy.EnvQPS: " 2.5 "}, buy.Config{QPS: 2.5, Consumer: true}, ""},
		{"on FC", fcEnv.With(buy.EnvRole, "worker"), buy.Config{QPS: buy.DefaultQPS}, ""},
		{"not FC: FC sets more", testutil.Env{"FC_FUNCTION_NAME": "xnum-buy"}, buy.Config{QPS: buy.DefaultQPS, Consumer: true}, ""},
		{"consumer on FC on purpose", fcEnv.With(buy.EnvRole, "worker", buy.EnvConsumer, "true"), buy.Config{QPS: buy.DefaultQPS, Consumer: true}, ""},
		{"no consumer", testutil.Env{buy.EnvConsumer: "false"}, buy.Config{QPS: buy.DefaultQPS}, ""},
		{"event timeout", testutil.Env{buy.EnvEventTimeout: "110s"}, buy.Config{QPS: buy.DefaultQPS, Consumer: true, EventTimeout: 110 * time.Second}, ""},
		{"negative QPS", testutil.Env{buy.EnvQPS: "-1"}, buy.Config{}, buy.EnvQPS},
		{"QPS a word", testutil.Env{buy.EnvQPS: "fast"}, buy.Config{}, buy.EnvQPS},
		{"QPS NaN", testutil.Env{buy.EnvQPS: "NaN"}, buy.Config{}, buy.EnvQPS},
		{"QPS too high", testutil.Env{buy.EnvQPS: "1001"}, buy.Config{}, buy.EnvQPS},
		{"consumer maybe", testutil.Env{buy.EnvConsumer: "maybe"}, buy.Config{}, buy.EnvConsumer},
		{"event timeout forever", testutil.Env{buy.EnvEventTimeout: "forever"}, buy.Config{}, buy.EnvEventTimeout},
		{"event timeout negative", testutil.Env{buy.EnvEventTimeout: "-1s"}, buy.Config{}, buy.EnvEventTimeout},
		{"event timeout too long", testutil.Env{buy.EnvEventTimeout: "1h"}, buy.Config{}, buy.EnvEventTimeout},
		{"reports wait", testutil.Env{buy.EnvReportsWait: "1h"}, buy.Config{QPS: buy.DefaultQPS, Consumer: true, ReportsWait: time.Hour}, ""},
		{"reports wait too short", testutil.Env{buy.EnvReportsWait: "500ms"}, buy.Config{}, buy.EnvReportsWait},
		{"reports wait too long", testutil.Env{buy.EnvReportsWait: "48h"}, buy.Config{}, buy.EnvReportsWait},
		{"reports wait a word", testutil.Env{buy.EnvReportsWait: "soon"}, buy.Config{}, buy.EnvReportsWait},
		{"lease and sweep", testutil.Env{buy.EnvLease: "2s", buy.EnvSweepEvery: "1s", buy.EnvSweepIdle: "3s"},
			buy.Config{QPS: buy.DefaultQPS, Consumer: true, Lease: 2 * time.Second, SweepEvery: time.Second, SweepIdle: 3 * time.Second}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := buy.ConfigFromEnv(tc.env.Lookup)
			if tc.bad != "" {
				testutil.WantEnvError(t, err, tc.bad, tc.env)
				return
			}
			if err != nil || got.QPS != tc.want.QPS || got.Consumer != tc.want.Consumer || got.EventTimeout != tc.want.EventTimeout || got.ReportsWait != tc.want.ReportsWait ||
				got.Lease != tc.want.Lease || got.SweepEvery != tc.want.SweepEvery || got.SweepIdle != tc.want.SweepIdle {
				t.Fatalf("ConfigFromEnv = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// fcEnv is what FC sets in every function instance.
var fcEnv = testutil.Env{}.With(testutil.OnFC...)

func TestLeaseAndSweepBounds(t *testing.T) {
	for _, name := range []string{buy.EnvLease, buy.EnvSweepEvery, buy.EnvSweepIdle} {
		for _, v := range []string{"10ms", "2h", "often"} {
			_, err := buy.ConfigFromEnv(testutil.Env{name: v}.Lookup)
			testutil.WantEnvError(t, err, name, nil)
		}
	}
}

func TestRole(t *testing.T) {
	for _, tc := range []struct {
		env      testutil.Env
		role     buy.Role
		consumer bool
		bad      string
	}{
		{nil, buy.RoleAll, true, ""},
		{testutil.Env{buy.EnvRole: "worker"}, buy.RoleWorker, true, ""},
		{testutil.Env{buy.EnvRole: "intake"}, buy.RoleIntake, false, ""},
		{testutil.Env{buy.EnvRole: "intake", buy.EnvConsumer: "false"}, buy.RoleIntake, false, ""},
		{fcEnv.With(buy.EnvRole, "intake"), buy.RoleIntake, false, ""},
		{fcEnv.With(buy.EnvRole, "worker"), buy.RoleWorker, false, ""},
		{fcEnv.With(buy.EnvRole, "all"), buy.RoleAll, false, ""},
		{fcEnv, "", false, buy.EnvRole},
		{testutil.Env{buy.EnvRole: "both"}, "", false, buy.EnvRole},
		{testutil.Env{buy.EnvRole: "intake", buy.EnvConsumer: "true"}, "", false, buy.EnvConsumer},
	} {
		c, err := buy.ConfigFromEnv(tc.env.Lookup)
		if tc.bad != "" {
			testutil.WantEnvError(t, err, tc.bad, nil)
			continue
		}
		if err != nil || c.Role != tc.role || c.Consumer != tc.consumer {
			t.Errorf("ConfigFromEnv(%v) = %+v, %v, want role %s consumer %v", tc.env, c, err, tc.role, tc.consumer)
		}
	}
}
