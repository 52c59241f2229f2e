// Package functiontest runs a function binary's wiring in a test as its
// main would run it: under FC's custom runtime contract on a loopback port,
// or against an emulated AWS Lambda Runtime API.
package functiontest

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/xnum-dev/xnum/internal/function"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger/lambda"
	"github.com/xnum-dev/xnum/internal/trigger/lambda/lambdatest"
)

// Binary is what a functions/*/main.go hands function.Main.
type Binary struct {
	Name string
	Wire function.Wire
}

// Run is the binary's main with env as its environment and stdout as its
// standard output.
func (b Binary) Run(ctx context.Context, env testutil.Env, stdout io.Writer, opts ...function.Option) error {
	return function.Run(ctx, b.Name, env.Lookup, stdout, b.Wire, opts...)
}

// Start serves the binary under FC's contract on a loopback port until the
// test ends, and returns its base URL. The test fails if the binary stops
// with an error.
func (b Binary) Start(t testing.TB, env testutil.Env, stdout io.Writer) string {
	t.Helper()
	return testutil.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return b.Run(ctx, env, stdout, function.WithListener(ln))
	})
}

// StartLambda runs the binary on Lambda, against a new emulated Runtime API,
// until the test ends, and returns the API to invoke it through. The test
// fails if the binary stops with an error.
func (b Binary) StartLambda(t testing.TB, env testutil.Env) *lambdatest.RuntimeAPI {
	t.Helper()
	api := lambdatest.NewRuntimeAPI()
	// aws-lambda-go reads the process's environment, the binary env.
	t.Setenv(lambda.RuntimeAPIEnv, api.Addr())
	env = env.With(lambda.RuntimeAPIEnv, api.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, env, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s on Lambda: %v", b.Name, err)
		}
	})
	return api
}
