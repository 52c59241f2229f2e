package function_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/config"
	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/trigger"
)

// DEBUG=sdk would make the Alibaba SDK print signed requests to stdout: the
// process refuses to start, before the function is wired, and says why.
func TestRunRefusesSDKDebug(t *testing.T) {
	wired := false
	wire := func(context.Context, function.Env) (trigger.Function, []function.Option, error) {
		wired = true
		return trigger.Function{}, nil, errors.New("wired")
	}
	err := function.Run(context.Background(), "remain", env(map[string]string{config.Debug: "sdk"}), io.Discard, wire)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != config.Debug || !strings.Contains(err.Error(), config.AllowSDKDebug) || wired {
		t.Fatalf("Run with DEBUG=sdk = %v (wired %v), want a refusal naming DEBUG and %s", err, wired, config.AllowSDKDebug)
	}
	err = function.Run(context.Background(), "remain", env(map[string]string{config.Debug: "sdk", config.AllowSDKDebug: "1"}), io.Discard, wire)
	if err == nil || err.Error() != "wired" || !wired {
		t.Fatalf("with %s=1 the function should be wired: %v", config.AllowSDKDebug, err)
	}
}
