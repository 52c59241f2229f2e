//go:build nonats

package function

import (
	"context"
	"log/slog"
	"time"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/internal/trigger"
)

// Built with -tags nonats, a function binary serves no NATS services and
// links no NATS client: s.yaml builds remain and pools so for FC, which
// freezes an idle instance (a NATS service there would stall) and where the
// client's package initialisation was a quarter of a cold start.

type natsOptions struct{}

// natsFrom refuses a NATS configuration the binary cannot serve.
func natsFrom(n config.NATS) (Option, error) {
	if n.Enabled() {
		return nil, envvar.Bad(config.NATSURL, "is set, but this binary was built without NATS (-tags nonats, as s.yaml builds it for FC); build it without the tag to serve NATS")
	}
	return func(*options) {}, nil
}

type natsServices struct{}

func startNATS(context.Context, trigger.Function, options) (natsServices, error) {
	return natsServices{}, nil
}

func (natsServices) flush() func(context.Context) error { return nil }

func (natsServices) ready() func(context.Context) error { return nil }

func (natsServices) serve(trigger.Function, *slog.Logger) func(context.Context) error { return nil }

func (natsServices) close(time.Duration) {}
