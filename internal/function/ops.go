package function

import (
	"context"
	"net/http"
	"time"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/metrics"
	"github.com/xnum-dev/xnum/internal/trigger/fc"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// readyTimeout bounds one readiness check.
const readyTimeout = 3 * time.Second

// Ops is the operators' endpoints of a long-lived process:
//
//	GET /metrics   the Prometheus text format of m
//	GET /healthz   200 while the process serves
//	GET /readyz    200 when every check passes, else 503 Unavailable naming the first that failed
//
// A check is a NATS connection that must be connected (NATSReady), or a
// function's Ready; a nil check is passed over. They are served on XNUM_METRICS_ADDR, never on a function's public
// routes, and on xnum dev's HTTP address.
func Ops(m *metrics.Metrics, ready ...func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET "+fc.HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := checkReady(ctx, ready); err != nil {
			httpjson.WriteError(w, r, &provider.Error{Kind: provider.ErrUnavailable, Message: "not ready: " + err.Error(), Err: err})
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

func checkReady(ctx context.Context, ready []func(context.Context) error) error {
	for _, f := range ready {
		if f == nil {
			continue
		}
		if err := f(ctx); err != nil {
			return err
		}
	}
	return nil
}
