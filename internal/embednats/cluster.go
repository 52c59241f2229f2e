package embednats

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is several embedded servers routed to each other with clustered
// JetStream, as an operator's cluster of machines would be. Each server can
// be shut down and restarted on its own store and ports, so tests can take
// away a stream's leader mid-run.
type Cluster struct {
	servers []*Server
	tempDir string // removed by Close when StartCluster made it
}

// account is the account clients use when the servers configure none.
const account = server.DEFAULT_GLOBAL_ACCOUNT

// StartCluster starts n servers (at least 3: JetStream needs a quorum) on
// loopback, named after WithServerName plus "-1", "-2", ..., each with its
// own store under WithStoreDir (a temporary directory without it), and
// waits until JetStream has a leader and every server follows it. WithPort
// does not apply: each server picks free client and cluster ports and keeps
// them across restarts.
func StartCluster(n int, opts ...Option) (*Cluster, error) {
	if n < 3 {
		return nil, fmt.Errorf("embednats: a cluster of %d servers, want at least 3", n)
	}
	base := config{host: "127.0.0.1", name: "xnum-embedded", readyWait: 10 * time.Second}
	for _, o := range opts {
		o(&base)
	}
	c := &Cluster{}
	if base.storeDir == "" {
		dir, err := os.MkdirTemp("", "xnum-nats-cluster-")
		if err != nil {
			return nil, fmt.Errorf("embednats: store dir: %w", err)
		}
		base.storeDir, c.tempDir = dir, dir
	}
	// A port found free may be taken before its server binds it (by a
	// server of another test picking a random port): start again on others.
	var err error
	for try := 0; try < 3; try++ {
		if err = c.start(base, n); err == nil {
			return c, nil
		}
		for _, s := range c.servers {
			s.Shutdown()
			os.RemoveAll(s.cfg.storeDir)
		}
		c.servers = nil
	}
	c.Close()
	return nil, err
}

func (c *Cluster) start(base config, n int) error {
	// Every server needs every route at its first start: JetStream sizes
	// its quorum from the configured routes.
	ports, err := freePorts(base.host, n)
	if err != nil {
		return err
	}
	routes := make([]*url.URL, n)
	for i, p := range ports {
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort(clientHost(base.host), strconv.Itoa(p))}
	}
	for i := range n {
		cfg := base
		cfg.port = 0
		cfg.name = base.name + "-" + strconv.Itoa(i+1)
		cfg.storeDir = filepath.Join(base.storeDir, cfg.name)
		cfg.clusterName = base.name
		cfg.clusterPort = ports[i]
		cfg.routes = routes
		s := &Server{cfg: cfg}
		if err := s.start(); err != nil {
			return err
		}
		c.servers = append(c.servers, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(base.readyWait, 30*time.Second))
	defer cancel()
	return c.WaitJetStream(ctx)
}

// freePorts finds n free TCP ports on host. They are free when it returns;
// a server started right after binds them.
func freePorts(host string, n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("embednats: cluster port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Servers are the cluster's servers, in the order of their names.
func (c *Cluster) Servers() []*Server { return c.servers }

// ClientURL lists every server's client URL, comma-separated, as nats.Connect
// takes it: a client moves to another server when its own goes away.
func (c *Cluster) ClientURL() string {
	urls := make([]string, len(c.servers))
	for i, s := range c.servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// StreamLeader is the server leading stream (of the default account), or
// nil while there is none (an election is under way).
func (c *Cluster) StreamLeader(stream string) *Server {
	for _, s := range c.servers {
		if ns := s.NATS(); ns != nil && ns.Running() && ns.JetStreamIsStreamLeader(account, stream) {
			return s
		}
	}
	return nil
}

// WaitJetStream waits until the running servers have a JetStream leader
// and every one of them is current with it, as after a restart.
func (c *Cluster) WaitJetStream(ctx context.Context) error {
	for {
		leader, behind := "", []string{}
		for _, s := range c.servers {
			ns := s.NATS()
			if ns == nil {
				continue
			}
			if ns.JetStreamIsLeader() {
				leader = s.Name()
			}
			if !ns.JetStreamIsCurrent() {
				behind = append(behind, s.Name())
			}
		}
		if leader != "" && len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embednats: cluster JetStream not ready (leader %q, not current: %v): %w", leader, behind, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close shuts every server down and removes the stores if StartCluster made
// them.
func (c *Cluster) Close() error {
	for _, s := range c.servers {
		s.Shutdown()
	}
	if c.tempDir != "" {
		return os.RemoveAll(c.tempDir)
	}
	return nil
}
