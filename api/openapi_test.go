package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/xnum-dev/xnum/api"
	"github.com/xnum-dev/xnum/events"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/intake"
	"github.com/xnum-dev/xnum/internal/pools"
	"github.com/xnum-dev/xnum/internal/remain"
	"github.com/xnum-dev/xnum/pkg/provider"
)

type operation struct {
	OperationID string                    `yaml:"operationId"`
	Responses   map[string]map[string]any `yaml:"responses"`
}

type schema struct {
	Type       string            `yaml:"type"`
	Required   []string          `yaml:"required"`
	Properties map[string]schema `yaml:"properties"`
	Enum       []string          `yaml:"enum"`
}

type document struct {
	OpenAPI    string                          `yaml:"openapi"`
	Paths      map[string]map[string]operation `yaml:"paths"`
	Components struct {
		Schemas map[string]schema `yaml:"schemas"`
	} `yaml:"components"`
}

func load(t *testing.T) (document, map[string]any) {
	t.Helper()
	var doc document
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(api.OpenAPI, &raw); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	return doc, raw
}

type nopInventory struct{}

func (nopInventory) Remain(context.Context, provider.RemainQuery) (provider.RemainResult, error) {
	return provider.RemainResult{}, nil
}

type nopLister struct{}

func (nopLister) ListPools(context.Context, provider.PoolQuery) (provider.PoolPage, error) {
	return provider.PoolPage{}, nil
}
func (nopLister) ListNumbers(context.Context, provider.NumberQuery) (provider.NumberPage, error) {
	return provider.NumberPage{}, nil
}

// served lists the "METHOD /path" patterns the functions' handlers register.
// Listing routes touches neither the buy handler's ledger nor its publisher.
func served() []string {
	m := httpjson.NewMux()
	remain.New("aliyun", nopInventory{}).Register(m)
	pools.New("volcengine", nopLister{}, pools.WithNumbers(nopLister{})).Register(m)
	return append(m.Patterns(), intake.New(nil, nil).Patterns()...)
}

func TestEveryRouteIsDocumented(t *testing.T) {
	doc, _ := load(t)
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			for _, code := range []string{"405", "500"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s %s does not document %s", method, path, code)
				}
			}
		}
	}
	sort.Strings(documented)
	for _, p := range served() {
		if !slices.Contains(documented, p) {
			t.Errorf("route %q is served but not documented (documented: %v)", p, documented)
		}
	}
	for _, p := range documented {
		if !slices.Contains(served(), p) {
			t.Errorf("route %q is documented but nothing serves it", p)
		}
	}
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(v any) []string {
	var out []string
	typ := reflect.TypeOf(v)
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func TestSchemasMatchTheGoTypes(t *testing.T) {
	doc, _ := load(t)
	for name, v := range map[string]any{
		"RemainResponse":  remain.Response{},
		"CityAmount":      provider.CityAmount{},
		"PoolsResponse":   pools.Response{},
		"Pool":            provider.Pool{},
		"NumbersResponse": pools.NumbersResponse{},
		"Number":          provider.Number{},
		"OrderRequest":    events.OrderRequested{},
		"OrderAccepted":   intake.Accepted{},
		"Order":           intake.Order{},
	} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		if want := jsonFields(v); !slices.Equal(props, want) {
			t.Errorf("schema %s has %v, the Go type %v", name, props, want)
		}
		for _, r := range s.Required {
			if _, ok := s.Properties[r]; !ok {
				t.Errorf("schema %s requires an unknown %s", name, r)
			}
		}
	}
	var orderErr []string
	for p := range doc.Components.Schemas["Order"].Properties["error"].Properties {
		orderErr = append(orderErr, p)
	}
	sort.Strings(orderErr)
	if want := jsonFields(events.Error{}); !slices.Equal(orderErr, want) {
		t.Errorf("schema Order.error has %v, the Go type events.Error %v", orderErr, want)
	}
	errSchema := doc.Components.Schemas["Error"].Properties["error"]
	if got := jsonFields(httpjson.ErrorDetail{}); !slices.Equal(got, []string{"code", "message", "requestId"}) {
		t.Fatalf("ErrorDetail fields %v", got)
	}
	codes := errSchema.Properties["code"].Enum
	for _, k := range []provider.Kind{provider.ErrInvalidParameter, provider.ErrUnauthorized, provider.ErrNotFound, provider.ErrConflict,
		provider.ErrInsufficientInventory, provider.ErrThrottled, provider.ErrUnavailable, provider.ErrInDoubt, provider.ErrInternal} {
		if !slices.Contains(codes, string(k)) {
			t.Errorf("error code %s is not documented", k)
		}
	}
	for _, c := range []string{httpjson.CodeMethodNotAllowed, httpjson.CodePayloadTooLarge} {
		if !slices.Contains(codes, c) {
			t.Errorf("error code %s is not documented", c)
		}
	}
}

// TestRefsResolve walks the document and checks every local $ref exists.
func TestRefsResolve(t *testing.T) {
	_, raw := load(t)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if k == "$ref" {
					ref, _ := val.(string)
					if !resolves(raw, ref) {
						t.Errorf("$ref %q does not resolve", ref)
					}
					continue
				}
				walk(val)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(raw)
}

func resolves(root map[string]any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	var cur any = root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestHandlersAnswerDocumentedStatuses(t *testing.T) {
	doc, _ := load(t)
	// The mux's own 404 and 405 are in the shared shape and documented.
	m := httpjson.NewMux()
	remain.New("aliyun", nopInventory{}).Register(m)
	for _, tc := range []struct {
		method, path string
		status       int
	}{{"POST", "/remain", http.StatusMethodNotAllowed}, {"GET", "/remain?specId=9&city=x", http.StatusBadRequest}} {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
		if _, ok := doc.Paths["/remain"]["get"].Responses[strconv.Itoa(tc.status)]; !ok {
			t.Errorf("status %d of /remain is not documented", tc.status)
		}
	}
}
