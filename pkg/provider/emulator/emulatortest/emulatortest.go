// Package emulatortest starts the two-cloud emulator on a loopback port for
// a test, as net/http/httptest does for a handler, and hands out provider
// configs that point at it.
package emulatortest

import (
	"net/http/httptest"
	"testing"

	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// Server is a running emulator.
type Server struct {
	*emulator.Emulator
	// URL is http://127.0.0.1:port.
	URL string
}

// NewServer starts an emulator built with opts (default key pair unless
// emulator.WithKey) and closes it when the test ends.
func NewServer(t testing.TB, opts ...emulator.Option) *Server {
	t.Helper()
	e := emulator.New(opts...)
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		e.Close()
		srv.Close()
	})
	return &Server{Emulator: e, URL: srv.URL}
}

// AliyunConfig is a Dyplsapi client config for this emulator with the default
// key pair; tests change fields as they need.
func (s *Server) AliyunConfig() aliyun.Config {
	return aliyun.Config{
		AccessKeyID:     emulator.DefaultAccessKeyID,
		AccessKeySecret: emulator.DefaultAccessKeySecret,
		Endpoint:        s.URL,
	}
}

// VolcengineConfig is a VMS client config for this emulator with the default
// key pair.
func (s *Server) VolcengineConfig() volcengine.Config {
	return volcengine.Config{
		AccessKeyID:     emulator.DefaultAccessKeyID,
		SecretAccessKey: emulator.DefaultAccessKeySecret,
		Endpoint:        s.URL,
	}
}

// Aliyun is a Dyplsapi client on AliyunConfig; it fails the test if the
// config is refused.
func (s *Server) Aliyun(t testing.TB) *aliyun.Client {
	t.Helper()
	c, err := aliyun.New(s.AliyunConfig())
	if err != nil {
		t.Fatalf("aliyun.New: %v", err)
	}
	return c
}

// Volcengine is a VMS client on VolcengineConfig.
func (s *Server) Volcengine(t testing.TB) *volcengine.Client {
	t.Helper()
	c, err := volcengine.New(s.VolcengineConfig())
	if err != nil {
		t.Fatalf("volcengine.New: %v", err)
	}
	return c
}
