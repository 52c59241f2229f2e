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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/xnum-dev/xnum/internal/embednats"
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

// Files are what a client needs: the CA certificate that signed the
// server's, and each user's .creds file by name.
type Files struct {
	CA    string
	Creds map[string]string
}

// Secure starts the server with users until the test ends.
func Secure(tb testing.TB, users ...User) (*embednats.Server, Files) {
	tb.Helper()
	dir := tb.TempDir()
	files := Files{CA: filepath.Join(dir, "ca.pem"), Creds: map[string]string{}}
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
		files.Creds[u.Name] = path
	}

	srv := embednats.RunTest(tb, embednats.WithServerOptions(func(o *server.Options) {
		o.TLS, o.TLSConfig, o.TLSTimeout = true, tlsConfig, 5
		o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
		o.AccountResolver = resolver
		o.SystemAccount = sysPub
	}))
	return srv, files
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
