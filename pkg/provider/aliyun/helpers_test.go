package aliyun

import (
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// Credentials the test emulators know. The secrets and the token are
// distinctive so a leak is easy to find.
const (
	keyID     = dypls.DefaultAccessKeyID
	keySecret = "static-SECRET-never-print"
	stsID     = "STS.test-key"
	stsSecret = "sts-SECRET-never-print"
	stsToken  = "sts-TOKEN+never/print="
	ctxID     = "STS.ctx-key"
	ctxSecret = "ctx-SECRET-never-print"
	ctxToken  = "ctx-TOKEN+never/print="
)

var secrets = []string{keySecret, stsSecret, stsToken, ctxSecret, ctxToken}

// env is an emulator on a loopback port and the faults it injects.
type env struct {
	emu    *dypls.Server
	http   *httptest.Server
	faults *fault.Set
	logs   *testutil.SyncBuffer
}

func newEnv(t *testing.T, opts ...dypls.Option) *env {
	t.Helper()
	faults := fault.NewSet(1)
	emu, err := dypls.New(append([]dypls.Option{
		dypls.WithFaults(faults),
		dypls.WithKey(keyID, keySecret),
		dypls.WithSTSToken(stsID, stsSecret, stsToken),
		dypls.WithSTSToken(ctxID, ctxSecret, ctxToken),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	return &env{emu: emu, http: hs, faults: faults, logs: &testutil.SyncBuffer{}}
}

// client returns a client of e with the static key, its logs in e.logs,
// and fast backoff; mod adjusts the config.
func (e *env) client(t *testing.T, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		AccessKeyID:     keyID,
		AccessKeySecret: keySecret,
		Endpoint:        e.http.URL,
		Logger:          slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.backoffBase, c.backoffMax = time.Millisecond, 4*time.Millisecond
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// settle waits for every request in flight on the emulator to finish, so
// its state is final.
func (e *env) settle() { e.http.Close() }

// asError checks err is a *provider.Error of kind from this package.
func asError(t *testing.T, err error, kind provider.Kind) *provider.Error {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *provider.Error", err, err)
	}
	if pe.Kind != kind || !errors.Is(err, kind) {
		t.Fatalf("kind %s, want %s: %v", pe.Kind, kind, err)
	}
	if pe.Provider != Name || pe.Op == "" {
		t.Fatalf("provider %q op %q: %v", pe.Provider, pe.Op, err)
	}
	return pe
}

// noSecrets fails if any text holds a secret, a token, or an unredacted
// Signature.
func noSecrets(t *testing.T, what string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, s := range secrets {
			for _, form := range []string{s, strings.ReplaceAll(strings.ReplaceAll(s, "+", "%2B"), "/", "%2F")} {
				if strings.Contains(text, form) {
					t.Fatalf("%s holds %q: %s", what, s, text)
				}
			}
		}
		for _, m := range rawParam().FindAllString(text, -1) {
			if !strings.HasSuffix(m, "="+redactedText) {
				t.Fatalf("%s holds %s: %s", what, m, text)
			}
		}
		for _, m := range escapedParam().FindAllString(text, -1) {
			if !strings.HasSuffix(m, "%3D"+redactedText) {
				t.Fatalf("%s holds %s: %s", what, m, text)
			}
		}
	}
}

// errorTexts is every string an error chain can print.
func errorTexts(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		out = append(out, e.Error())
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}
