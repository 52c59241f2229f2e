// Package embednats runs a NATS server with JetStream inside the process, on
// loopback, for `xnum dev` and for tests, or a cluster of them (StartCluster)
// as an operator's would be. A Server can be shut down and started again on
// the same store directory and ports, as a crash and restart of a real
// server would, so clients reconnect and find their streams.
package embednats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	host       string
	port       int
	storeDir   string
	name       string
	logger     *slog.Logger
	readyWait  time.Duration
	maxStore   int64
	maxMemory  int64
	syncAlways bool
	server     []func(*server.Options)

	// Set by StartCluster for each of its servers.
	clusterName string
	clusterPort int
	routes      []*url.URL
}

// WithHost sets the address to listen on (default 127.0.0.1).
func WithHost(host string) Option { return func(c *config) { c.host = host } }

// WithPort sets the client port; 0 (the default) picks a free one.
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// WithStoreDir sets the JetStream store directory. Without it Start makes a
// temporary directory, and Shutdown keeps it so Restart finds the data;
// Close removes it.
func WithStoreDir(dir string) Option { return func(c *config) { c.storeDir = dir } }

// WithServerName sets the server's name (default "xnum-embedded").
func WithServerName(name string) Option { return func(c *config) { c.name = name } }

// WithLogger sends the server's log to l (default: no server log).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithReadyTimeout bounds the wait for the server to accept connections
// (default 10s).
func WithReadyTimeout(d time.Duration) Option { return func(c *config) { c.readyWait = d } }

// WithJetStreamLimits caps JetStream's file store and memory in bytes
// (0 leaves the server's default).
func WithJetStreamLimits(maxStore, maxMemory int64) Option {
	return func(c *config) { c.maxStore, c.maxMemory = maxStore, maxMemory }
}

// WithSyncAlways makes JetStream fsync every write before it acknowledges
// it (nats-server's sync_interval: always), so an acknowledged write
// survives a power loss or an OS crash. The default writes to the OS before
// the acknowledgement, which survives a crash of the process, and fsyncs
// every two minutes.
func WithSyncAlways() Option { return func(c *config) { c.syncAlways = true } }

// WithServerOptions edits the server's options after this package has set
// them, e.g. for TLS and accounts (see embednatstest.Secure). A server with
// TLS is reached at a tls:// URL.
func WithServerOptions(f func(*server.Options)) Option {
	return func(c *config) { c.server = append(c.server, f) }
}

// Server is an embedded NATS server with JetStream.
type Server struct {
	cfg     config
	tempDir bool

	mu   sync.Mutex
	ns   *server.Server
	port int  // the port of the first start, kept for restarts
	tls  bool // clients must use TLS
}

// Start starts a server and waits until it accepts connections.
func Start(opts ...Option) (*Server, error) {
	cfg := config{host: "127.0.0.1", name: "xnum-embedded", readyWait: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{cfg: cfg, port: cfg.port}
	if s.cfg.storeDir == "" {
		dir, err := os.MkdirTemp("", "xnum-nats-")
		if err != nil {
			return nil, fmt.Errorf("embednats: store dir: %w", err)
		}
		s.cfg.storeDir, s.tempDir = dir, true
	}
	if err := s.start(); err != nil {
		if s.tempDir {
			os.RemoveAll(s.cfg.storeDir)
		}
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns != nil {
		return errors.New("embednats: already running")
	}
	port := s.port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	o := &server.Options{
		ServerName:         s.cfg.name,
		Host:               s.cfg.host,
		Port:               port,
		JetStream:          true,
		StoreDir:           s.cfg.storeDir,
		JetStreamMaxStore:  s.cfg.maxStore,
		JetStreamMaxMemory: s.cfg.maxMemory,
		NoSigs:             true,
		NoLog:              s.cfg.logger == nil,
	}
	if s.cfg.syncAlways {
		o.SyncAlways = true
	}
	if s.cfg.clusterName != "" {
		o.Cluster = server.ClusterOpts{Name: s.cfg.clusterName, Host: s.cfg.host, Port: s.cfg.clusterPort}
		o.Routes = s.cfg.routes
	}
	for _, f := range s.cfg.server {
		f(o)
	}
	s.tls = o.TLSConfig != nil
	ns, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("embednats: %w", err)
	}
	if s.cfg.logger != nil {
		ns.SetLoggerV2(slogAdapter{s.cfg.logger}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(s.cfg.readyWait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("embednats: server on %s:%d not ready within %v", s.cfg.host, s.port, s.cfg.readyWait)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return errors.New("embednats: JetStream did not start")
	}
	if addr, ok := ns.Addr().(*net.TCPAddr); ok {
		s.port = addr.Port
	}
	s.ns = ns
	return nil
}

// ClientURL is the nats:// (tls:// with TLS) URL clients connect to. It
// stays the same across restarts.
func (s *Server) ClientURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	scheme := "nats://"
	if s.tls {
		scheme = "tls://"
	}
	return scheme + net.JoinHostPort(clientHost(s.cfg.host), strconv.Itoa(s.port))
}

func clientHost(h string) string {
	if h == "" || h == "0.0.0.0" || h == "::" {
		return "127.0.0.1"
	}
	return h
}

// Name is the server's name.
func (s *Server) Name() string { return s.cfg.name }

// StoreDir is the JetStream store directory.
func (s *Server) StoreDir() string { return s.cfg.storeDir }

// Running reports whether the server is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns != nil && s.ns.Running()
}

// NATS is the running nats-server, for what this package does not wrap; nil
// when shut down.
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns
}

// Shutdown stops the server and waits until it has stopped. The store is
// kept, so Restart resumes from it. Shutting down a stopped server does
// nothing.
func (s *Server) Shutdown() {
	s.mu.Lock()
	ns := s.ns
	s.ns = nil
	s.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Restart shuts the server down (if it runs) and starts it again on the same
// store directory and port. A restarted port may be briefly taken by another
// process; Restart retries until ctx ends.
func (s *Server) Restart(ctx context.Context) error {
	s.Shutdown()
	for {
		err := s.start()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embednats: restart: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close shuts the server down and removes its store if Start made it.
func (s *Server) Close() error {
	s.Shutdown()
	if s.tempDir {
		return os.RemoveAll(s.cfg.storeDir)
	}
	return nil
}

// slogAdapter writes the server's log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(f string, v ...any) { a.l.Info(fmt.Sprintf(f, v...), "component", "nats") }
func (a slogAdapter) Warnf(f string, v ...any)   { a.l.Warn(fmt.Sprintf(f, v...), "component", "nats") }
func (a slogAdapter) Fatalf(f string, v ...any) {
	a.l.Error(fmt.Sprintf(f, v...), "component", "nats", "fatal", true)
}
func (a slogAdapter) Errorf(f string, v ...any) { a.l.Error(fmt.Sprintf(f, v...), "component", "nats") }
func (a slogAdapter) Debugf(f string, v ...any) { a.l.Debug(fmt.Sprintf(f, v...), "component", "nats") }
func (a slogAdapter) Tracef(f string, v ...any) { a.l.Debug(fmt.Sprintf(f, v...), "component", "nats") }
