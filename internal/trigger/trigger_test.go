package trigger_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

func TestFunctionHandleEvents(t *testing.T) {
	msgs := []trigger.Message{{ID: "1"}, {ID: "2"}}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		events  trigger.EventHandler
		want    []error
		wantAny bool
	}{
		{"no handler", nil, []error{trigger.ErrNoEvents, trigger.ErrNoEvents}, false},
		{"per message", trigger.EventHandlerFunc(func(context.Context, []trigger.Message) []error { return []error{nil, boom} }), []error{nil, boom}, false},
		{"wrong count", trigger.EventHandlerFunc(func(context.Context, []trigger.Message) []error { return nil }), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := trigger.Function{Name: "f", Events: tc.events}
			errs := f.HandleEvents(context.Background(), msgs)
			if len(errs) != len(msgs) {
				t.Fatalf("got %d errors for %d messages", len(errs), len(msgs))
			}
			for i, err := range errs {
				if tc.wantAny {
					if err == nil {
						t.Errorf("message %d: nil error from a handler that answered the wrong count", i)
					}
					continue
				}
				if !errors.Is(err, tc.want[i]) {
					t.Errorf("message %d: %v, want %v", i, err, tc.want[i])
				}
			}
		})
	}
	f := trigger.Function{Name: "remain"}
	err := f.HandleEvents(context.Background(), msgs)[0]
	if !errors.Is(err, trigger.ErrNoEvents) || provider.KindOf(err) != provider.ErrInvalidParameter || !strings.Contains(err.Error(), "function remain takes no events") {
		t.Errorf("no handler: %v", err)
	}
	first, n := trigger.FirstError([]error{nil, boom, errors.New("x")})
	if first != boom || n != 2 {
		t.Errorf("FirstError = %v, %d", first, n)
	}
}

func TestValidate(t *testing.T) {
	ok := trigger.Function{Name: "remain", HTTP: http.NotFoundHandler()}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []trigger.Function{
		{HTTP: http.NotFoundHandler()},
		{Name: "empty"},
		{Name: "svc", Services: []trigger.Service{{Name: "s", Endpoints: []trigger.Endpoint{{Name: "e"}}}}},
	} {
		if f.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", f)
		}
	}
}
