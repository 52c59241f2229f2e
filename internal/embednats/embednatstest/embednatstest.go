// Package embednatstest runs an embedded NATS server as production runs
// it, for tests: TLS with the certificate of a private CA, operator mode
// (JWT), one account with JetStream, and users with only the permissions
// they are given, each with a .creds file.
package embednatstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/testutil"
)

// Account is the name of the account the users belong to.
const Account = "XNUM"

// User is a user of the account: what it may publish and subscribe to, and
// whether it may answer requests (publish to their reply subjects).
type User struct {
	Name      string
	Pub, Sub  []string
	Responses bool
}

// Server is the running server and what a client needs: the CA
// certificate that signed the server's, and each user's .creds file by name.
type Server struct {
	*embednats.Server
	CA    string
	Creds map[string]string
	log   *testutil.SyncBuffer
}

// Violations are the server's log lines about clients denied a publish or
// a subscription so far.
func (s *Server) Violations() []string {
	var out []string
	for _, l := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(l, "Violation") {
			out = append(out, l)
		}
	}
	return out
}

// Secure starts the server with users until the test ends.
func Secure(tb testing.TB, users ...User) *Server {
	tb.Helper()
	dir := tb.TempDir()
	srv := &Server{CA: filepath.Join(dir, "ca.pem"), Creds: map[string]string{}, log: &testutil.SyncBuffer{}}
	tlsConfig := certificates(tb, dir)

	operator, opPub := keys(tb, nkeys.CreateOperator)
	_, sysPub := keys(tb, nkeys.CreateAccount)
	account, accPub := keys(tb, nkeys.CreateAccount)
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "xnum-test"
	oc.SystemAccount = sysPub
	opJWT := encode(tb, oc, operator)
	opClaims, err := jwt.DecodeOperatorClaims(opJWT)
	if err != nil {
		tb.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	ac := jwt.NewAccountClaims(accPub)
	ac.Name = Account
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	for pub, claims := range map[string]*jwt.AccountClaims{sysPub: sc, accPub: ac} {
		if err := resolver.Store(pub, encode(tb, claims, operator)); err != nil {
			tb.Fatal(err)
		}
	}

	for _, u := range users {
		kp, pub := keys(tb, nkeys.CreateUser)
		uc := jwt.NewUserClaims(pub)
		uc.Name = u.Name
		uc.Pub.Allow.Add(u.Pub...)
		uc.Sub.Allow.Add(u.Sub...)
		if u.Responses {
			uc.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: time.Minute}
		}
		seed, _ := kp.Seed()
		creds, err := jwt.FormatUserConfig(encode(tb, uc, account), seed)
		if err != nil {
			tb.Fatal(err)
		}
		path := filepath.Join(dir, u.Name+".creds")
		if err := os.WriteFile(path, creds, 0o600); err != nil {
			tb.Fatal(err)
		}
		srv.Creds[u.Name] = path
	}

	srv.Server = embednats.RunTest(tb,
		embednats.WithLogger(slog.New(slog.NewTextHandler(srv.log, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		embednats.WithServerOptions(func(o *server.Options) {
			o.TLS, o.TLSConfig, o.TLSTimeout = true, tlsConfig, 5
			o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
			o.AccountResolver = resolver
			o.SystemAccount = sysPub
		}))
	return srv
}

func keys(tb testing.TB, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, string) {
	tb.Helper()
	kp, err := create()
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	return kp, pub
}

func encode(tb testing.TB, c jwt.Claims, signer nkeys.KeyPair) string {
	tb.Helper()
	s, err := c.Encode(signer)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// certificates makes a CA (written to dir/ca.pem) and a certificate it
// signs for 127.0.0.1 and localhost, and returns the server's TLS config.
func certificates(tb testing.TB, dir string) *tls.Config {
	tb.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "xnum test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
}

// UsersFromNSC reads the users that `nsc add user` commands in text create
// (a README's, say): each command's --name, --allow-pub and --allow-sub
// lists (quoted with ', comma-separated, the flags repeatable) and
// --allow-pub-response. Lines ending in a backslash continue.
func UsersFromNSC(tb testing.TB, text string) []User {
	tb.Helper()
	var users []User
	for _, line := range strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n") {
		if !strings.Contains(line, "nsc add user ") {
			continue
		}
		name := nscName.FindStringSubmatch(line)
		if name == nil {
			tb.Fatalf("nsc add user without --name: %s", line)
		}
		u := User{Name: name[1], Responses: strings.Contains(line, "--allow-pub-response")}
		for _, m := range nscList.FindAllStringSubmatch(line, -1) {
			list := strings.Split(m[2], ",")
			if m[1] == "pub" {
				u.Pub = append(u.Pub, list...)
			} else {
				u.Sub = append(u.Sub, list...)
			}
		}
		users = append(users, u)
	}
	if len(users) == 0 {
		tb.Fatal("no nsc add user command in the text")
	}
	return users
}

var (
	nscName = regexp.MustCompile(`--name (\S+)`)
	nscList = regexp.MustCompile(`--allow-(pub|sub) '([^']*)'`)
)
