package embednats

import "testing"

// RunTest starts a server for the test tb, on loopback with a random port and
// the store in tb.TempDir() (unless an option says otherwise), and shuts it
// down when the test ends. It fails the test if the server cannot start.
func RunTest(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	all := append([]Option{WithStoreDir(tb.TempDir())}, opts...)
	s, err := Start(all...)
	if err != nil {
		tb.Fatalf("embednats: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// RunTestCluster starts a cluster of n servers for tb, with the stores in
// tb.TempDir() (unless an option says otherwise), and shuts it down when
// the test ends.
func RunTestCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	all := append([]Option{WithStoreDir(tb.TempDir())}, opts...)
	c, err := StartCluster(n, all...)
	if err != nil {
		tb.Fatalf("embednats: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
