package volcengine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/vms"
)

func TestDefaults(t *testing.T) {
	c, err := New(Config{AccessKeyID: "AKLTx", SecretAccessKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.endpoint != "https://cloud-vms.volcengineapi.com" || c.svc.Endpoint != c.endpoint {
		t.Fatalf("endpoint %q (SDK %q), want https://cloud-vms.volcengineapi.com", c.endpoint, c.svc.Endpoint)
	}
	if c.svc.SigningRegion != "cn-beijing" || c.svc.SigningName != "vms" || c.svc.APIVersion != "2022-01-01" {
		t.Fatalf("signing %s/%s, version %s", c.svc.SigningRegion, c.svc.SigningName, c.svc.APIVersion)
	}
	if c.timeout != DefaultTimeout || c.svc.MaxRetries() != DefaultMaxRetries {
		t.Fatalf("timeout %v, retries %d", c.timeout, c.svc.MaxRetries())
	}
	if c.svc.Config.HTTPClient == http.DefaultClient || c.svc.Config.HTTPClient != c.http {
		t.Fatal("the client does not use its own http.Client")
	}
	none, _ := New(Config{AccessKeyID: "AKLTx", SecretAccessKey: "s", MaxRetries: -1})
	if none.svc.MaxRetries() != 0 {
		t.Fatalf("MaxRetries -1 gives %d retries", none.svc.MaxRetries())
	}
}

// The client speaks TLS and checks the server's certificate.
func TestHTTPS(t *testing.T) {
	emu, err := vms.New(vms.WithKey("AKLTx", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(emu)
	t.Cleanup(srv.Close)
	c, err := New(Config{AccessKeyID: "AKLTx", SecretAccessKey: "secret", Endpoint: srv.URL, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListPools(context.Background(), provider.PoolQuery{})
	var unknownCA x509.UnknownAuthorityError
	if !errors.Is(err, provider.ErrUnavailable) || !errors.As(err, &unknownCA) {
		t.Fatalf("a server with an unknown certificate: %v", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.http.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	page, err := c.ListPools(context.Background(), provider.PoolQuery{})
	if err != nil || page.Total != len(vms.DefaultPools()) {
		t.Fatalf("over TLS: %+v %v", page, err)
	}
}

func TestKindOf(t *testing.T) {
	for code, kind := range kinds {
		for _, status := range []int{200, 400, 401, 429, 500, 503} {
			if got := kindOf(code, status); got != kind {
				t.Errorf("kindOf(%s, %d) = %s, want %s", code, status, got, kind)
			}
		}
		if got := kindOf(code+".Detail", 400); got != kind {
			t.Errorf("kindOf(%s.Detail) = %s, want %s", code, got, kind)
		}
	}
	for status, kind := range map[int]provider.Kind{
		200: provider.ErrInternal, 400: provider.ErrInternal, 401: provider.ErrUnauthorized, 403: provider.ErrUnauthorized,
		404: provider.ErrInternal, 429: provider.ErrThrottled, 500: provider.ErrUnavailable, 502: provider.ErrUnavailable,
		503: provider.ErrUnavailable, 504: provider.ErrUnavailable,
	} {
		if got := kindOf("SomethingNew", status); got != kind {
			t.Errorf("an unknown code with %d is %s, want %s", status, got, kind)
		}
	}

	// The SDK's retry lists come from the table, and hold exactly the
	// retryable codes.
	for code, kind := range kinds {
		retry, throttle := slices.Contains(retryCodes, code), slices.Contains(throttleCodes, code)
		if retry != (kind == provider.ErrUnavailable) || throttle != (kind == provider.ErrThrottled) {
			t.Errorf("%s (%s): retry %v, throttle %v", code, kind, retry, throttle)
		}
	}
}
