// Package emulator serves both clouds' wire APIs on one address: Alibaba
// Cloud Dyplsapi (package dypls), Volcengine VMS (package vms) and Alibaba
// Cloud Function Compute 3.0's InvokeFunction (package fc), each checking
// signatures as its cloud does, sharing one key pair and one set of injected
// faults. It is what `xnum emulator` and `xnum dev` run, and what the
// project's tests drive the real SDK clients against.
//
// Requests are told apart the way the clouds' gateways would never need to:
// FC's paths start with its API version (/2023-03-30/); VMS (2022-01-01)
// signs with an HMAC-SHA256 Authorization header and puts Action and Version
// in the query; anything else is Dyplsapi RPC, which may carry its
// parameters in the query or a form body.
package emulator

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fc"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/vms"
)

// The key pair both clouds accept unless WithKey says otherwise.
const (
	DefaultAccessKeyID     = "xnum-dev-key"
	DefaultAccessKeySecret = "xnum-dev-secret"
)

// Emulator is an http.Handler for both clouds.
type Emulator struct {
	dypls  *dypls.Server
	vms    *vms.Server
	fc     *fc.Server
	faults *fault.Set
}

type options struct {
	id, secret, token string
	faults            *fault.Set
	clock             func() time.Time
	log               *slog.Logger
	dypls             []dypls.Option
	vms               []vms.Option
	fc                []fc.Option
}

// Option configures an Emulator.
type Option func(*options)

// WithKey sets the one key pair both clouds accept (default
// DefaultAccessKeyID / DefaultAccessKeySecret).
func WithKey(accessKeyID, secret string) Option {
	return func(o *options) { o.id, o.secret, o.token = accessKeyID, secret, "" }
}

// WithSTSToken makes the key pair temporary: every request must carry token
// (SecurityToken for Dyplsapi, X-Security-Token for VMS).
func WithSTSToken(accessKeyID, secret, token string) Option {
	return func(o *options) { o.id, o.secret, o.token = accessKeyID, secret, token }
}

// WithFaults shares set with both clouds; fault actions are the clouds'
// action names (BuySecretNo, NumberPoolList, ...). Default: a new empty set,
// reachable through Faults.
func WithFaults(set *fault.Set) Option { return func(o *options) { o.faults = set } }

// WithFault injects f into every call of action.
func WithFault(action string, f fault.Fault) Option {
	return func(o *options) {
		if o.faults == nil {
			o.faults = fault.NewSet(1)
		}
		o.faults.Set(action, f)
	}
}

// WithClock replaces time.Now in both clouds' signature and time checks.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithLogger logs both clouds' requests to l.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithDyplsOptions passes options (stock, pools) to the Dyplsapi emulator.
func WithDyplsOptions(opts ...dypls.Option) Option {
	return func(o *options) { o.dypls = append(o.dypls, opts...) }
}

// WithVMSOptions passes options (pools) to the VMS emulator.
func WithVMSOptions(opts ...vms.Option) Option {
	return func(o *options) { o.vms = append(o.vms, opts...) }
}

// WithFCOptions passes options (role, account, retry delay) to the FC
// emulator.
func WithFCOptions(opts ...fc.Option) Option {
	return func(o *options) { o.fc = append(o.fc, opts...) }
}

// New returns an Emulator with both clouds' default seeds and no FC
// functions, or the error of a seed one of them refused (WithDyplsOptions,
// WithVMSOptions). Close stops the FC invocations it runs.
func New(opts ...Option) (*Emulator, error) {
	o := options{id: DefaultAccessKeyID, secret: DefaultAccessKeySecret}
	for _, opt := range opts {
		opt(&o)
	}
	if o.faults == nil {
		o.faults = fault.NewSet(1)
	}
	d := []dypls.Option{dypls.WithFaults(o.faults)}
	v := []vms.Option{vms.WithFaults(o.faults)}
	var f []fc.Option
	if o.token != "" {
		d = append(d, dypls.WithSTSToken(o.id, o.secret, o.token))
		v = append(v, vms.WithSTSToken(o.id, o.secret, o.token))
		f = append(f, fc.WithSTSToken(o.id, o.secret, o.token))
	} else {
		d = append(d, dypls.WithKey(o.id, o.secret))
		v = append(v, vms.WithKey(o.id, o.secret))
		f = append(f, fc.WithKey(o.id, o.secret))
	}
	if o.clock != nil {
		d = append(d, dypls.WithClock(o.clock))
		v = append(v, vms.WithClock(o.clock))
		f = append(f, fc.WithClock(o.clock))
	}
	if o.log != nil {
		d = append(d, dypls.WithLogger(o.log))
		v = append(v, vms.WithLogger(o.log))
		f = append(f, fc.WithLogger(o.log))
	}
	ds, err := dypls.New(append(d, o.dypls...)...)
	if err != nil {
		return nil, err
	}
	vs, err := vms.New(append(v, o.vms...)...)
	if err != nil {
		return nil, err
	}
	return &Emulator{dypls: ds, vms: vs, fc: fc.New(append(f, o.fc...)...), faults: o.faults}, nil
}

// Dypls is the Dyplsapi half, for inspection (Purchases, Calls, Stock).
func (e *Emulator) Dypls() *dypls.Server { return e.dypls }

// VMS is the VMS half, for inspection (Pools, Calls).
func (e *Emulator) VMS() *vms.Server { return e.vms }

// FC is Function Compute, where functions are registered (Register) and
// their invocations inspected (Invocations).
func (e *Emulator) FC() *fc.Server { return e.fc }

// Faults is the fault set both halves consult; changes apply to the next call.
func (e *Emulator) Faults() *fault.Set { return e.faults }

// Close stops the FC invocations under way and waiting.
func (e *Emulator) Close() { e.fc.Close() }

// ServeHTTP routes a request to the cloud it is meant for.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/"+fc.APIVersion+"/") {
		e.fc.ServeHTTP(w, r)
		return
	}
	if isVMS(r) {
		e.vms.ServeHTTP(w, r)
		return
	}
	e.dypls.ServeHTTP(w, r)
}

func isVMS(r *http.Request) bool {
	return r.URL.Query().Get("Version") == vms.APIVersion ||
		strings.HasPrefix(r.Header.Get("Authorization"), "HMAC-SHA256")
}

// Serve answers on l until ctx is done, then shuts down, waiting up to two
// seconds for calls in flight before it closes what is left: an emulator
// owes nothing to a client that is still connected.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if srv.Shutdown(shutdown) != nil {
		srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
