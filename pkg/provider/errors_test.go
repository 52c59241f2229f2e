package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestKindHTTPStatus(t *testing.T) {
	tests := []struct {
		kind   Kind
		status int
		retry  bool
	}{
		{ErrInvalidParameter, http.StatusBadRequest, false},
		{ErrUnauthorized, http.StatusBadGateway, false},
		{ErrNotFound, http.StatusNotFound, false},
		{ErrConflict, http.StatusConflict, false},
		{ErrInsufficientInventory, http.StatusConflict, false},
		{ErrThrottled, http.StatusTooManyRequests, true},
		{ErrUnavailable, http.StatusServiceUnavailable, true},
		{ErrInDoubt, http.StatusGatewayTimeout, false},
		{ErrInternal, http.StatusInternalServerError, false},
		{Kind("Whatever"), http.StatusInternalServerError, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			if got := tt.kind.HTTPStatus(); got != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", got, tt.status)
			}
			if got := tt.kind.Retryable(); got != tt.retry {
				t.Errorf("Retryable = %v, want %v", got, tt.retry)
			}
		})
	}
}

func TestErrorWrapping(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	e := &Error{Kind: ErrInDoubt, Provider: "aliyun", Op: "BuySecretNo", Message: "connection lost after the request was sent", Err: cause}
	wrapped := fmt.Errorf("order o-1: %w", e)

	if !errors.Is(wrapped, ErrInDoubt) {
		t.Error("errors.Is(wrapped, ErrInDoubt) = false")
	}
	if !errors.Is(wrapped, io.ErrUnexpectedEOF) {
		t.Error("the cause is not reachable with errors.Is")
	}
	if errors.Is(wrapped, ErrUnavailable) {
		t.Error("errors.Is matched another kind")
	}
	var got *Error
	if !errors.As(wrapped, &got) || got.Op != "BuySecretNo" {
		t.Errorf("errors.As did not find the *Error: %v", got)
	}
	if KindOf(wrapped) != ErrInDoubt || HTTPStatus(wrapped) != http.StatusGatewayTimeout || Retryable(wrapped) {
		t.Errorf("KindOf/HTTPStatus/Retryable wrong for %v", wrapped)
	}
	want := "aliyun BuySecretNo: connection lost after the request was sent: unexpected EOF"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		err  error
		want Kind
	}{
		{nil, ""},
		{errors.New("boom"), ErrInternal},
		{ErrThrottled, ErrThrottled},
		{fmt.Errorf("x: %w", ErrNotFound), ErrNotFound},
		{Invalid("city", "city is required"), ErrInvalidParameter},
		{&Error{Kind: ErrConflict, Code: "isv.BIND_CONFLICT"}, ErrConflict},
		{context.DeadlineExceeded, ErrInternal},
	}
	for _, tt := range tests {
		if got := KindOf(tt.err); got != tt.want {
			t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if HTTPStatus(nil) != http.StatusOK {
		t.Error("HTTPStatus(nil) is not 200")
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		e    *Error
		want string
	}{
		{Invalid("specId", "specId must be 1, 2 or 3"), "specId must be 1, 2 or 3"},
		{&Error{Kind: ErrInsufficientInventory, Provider: "aliyun", Op: "BuySecretNo", Code: "isv.NO_AVAILABLE_NUMBER", Message: "no number", RequestID: "R1"},
			"aliyun BuySecretNo: no number (isv.NO_AVAILABLE_NUMBER, request R1)"},
		{&Error{Kind: ErrUnavailable, Provider: "volcengine", Err: io.EOF}, "volcengine: EOF"},
		{&Error{Kind: ErrThrottled}, "Throttled"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestCredentialsNeverPrintSecrets(t *testing.T) {
	c := Credentials{AccessKeyID: "LTAI-id", AccessKeySecret: "s3cr3t-value", SecurityToken: "t0ken-value"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("creds", "c", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logged.String()} {
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, "t0ken") {
			t.Errorf("secret printed: %s", s)
		}
		if !strings.Contains(s, "LTAI-id") {
			t.Errorf("key id missing: %s", s)
		}
	}
}

func TestCredentialsContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := CredentialsFromContext(ctx); ok {
		t.Fatal("credentials in an empty context")
	}
	if _, ok := CredentialsFromContext(ContextWithCredentials(ctx, Credentials{})); ok {
		t.Fatal("credentials without a key id count as present")
	}
	want := Credentials{AccessKeyID: "id", AccessKeySecret: "s", SecurityToken: "t"}
	got, ok := CredentialsFromContext(ContextWithCredentials(ctx, want))
	if !ok || got != want {
		t.Fatalf("got %v %v", got, ok)
	}
}

type pager struct {
	pools []Pool
	calls int
	fail  int // fail on this call number
}

func (p *pager) ListPools(_ context.Context, q PoolQuery) (PoolPage, error) {
	p.calls++
	if p.calls == p.fail {
		return PoolPage{}, &Error{Kind: ErrThrottled}
	}
	end := min(q.Offset+q.Limit, len(p.pools))
	return PoolPage{Total: len(p.pools), Offset: q.Offset, Limit: q.Limit, Records: p.pools[min(q.Offset, end):end]}, nil
}

func TestAllPools(t *testing.T) {
	p := &pager{}
	for i := range 25 {
		p.pools = append(p.pools, Pool{PoolNo: fmt.Sprintf("NP%d", i)})
	}
	var got []string
	for pool, err := range AllPools(context.Background(), p, PoolQuery{Limit: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pool.PoolNo)
	}
	if len(got) != 25 || got[24] != "NP24" || p.calls != 3 {
		t.Fatalf("got %d pools in %d calls", len(got), p.calls)
	}

	// Stopping early makes no further call.
	p.calls = 0
	for range AllPools(context.Background(), p, PoolQuery{Limit: 10}) {
		break
	}
	if p.calls != 1 {
		t.Fatalf("break after the first pool made %d calls", p.calls)
	}

	// An error ends the sequence with the error.
	p.calls, p.fail = 0, 2
	n, sawErr := 0, false
	for _, err := range AllPools(context.Background(), p, PoolQuery{Limit: 10}) {
		if err != nil {
			sawErr = errors.Is(err, ErrThrottled)
			continue
		}
		n++
	}
	if n != 10 || !sawErr {
		t.Fatalf("got %d pools and error %v, want 10 and a Throttled error", n, sawErr)
	}
}
