// Package pools is the pools function: the number pools of a provider
// (Volcengine VMS NumberPoolList) over HTTP (GET /pools) and NATS
// (xnum.pools), and, when the provider lists numbers, the numbers of one
// pool (GET /pools/{poolNo}/numbers, xnum.pools.numbers).
package pools

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Routes and subjects of the function.
const (
	Pattern        = "GET /pools"
	NumbersPattern = "GET /pools/{poolNo}/numbers"
	Subject        = "xnum.pools"
	NumbersSubject = "xnum.pools.numbers"
)

// Lister is what the function needs of a provider.
type Lister interface {
	ListPools(ctx context.Context, q provider.PoolQuery) (provider.PoolPage, error)
}

// NumberLister lists the numbers in pools; optional.
type NumberLister interface {
	ListNumbers(ctx context.Context, q provider.NumberQuery) (provider.NumberPage, error)
}

// Response is the answer of GET /pools and xnum.pools.
type Response struct {
	Provider string          `json:"provider"`
	Total    int             `json:"total"`
	Offset   int             `json:"offset"`
	Limit    int             `json:"limit"`
	Records  []provider.Pool `json:"records"`
}

// NumbersResponse is the answer of GET /pools/{poolNo}/numbers and
// xnum.pools.numbers.
type NumbersResponse struct {
	Provider string            `json:"provider"`
	PoolNo   string            `json:"poolNo"`
	Total    int               `json:"total"`
	Offset   int               `json:"offset"`
	Limit    int               `json:"limit"`
	Records  []provider.Number `json:"records"`
}

// Handler serves the function.
type Handler struct {
	provider string
	pools    Lister
	numbers  NumberLister
	mux      *httpjson.Mux
}

// Option configures New.
type Option func(*Handler)

// WithNumbers serves the numbers of a pool from nl.
func WithNumbers(nl NumberLister) Option { return func(h *Handler) { h.numbers = nl } }

// New returns the function over l; providerName is what the answers say
// they came from ("volcengine").
func New(providerName string, l Lister, opts ...Option) *Handler {
	h := &Handler{provider: providerName, pools: l, mux: httpjson.NewMux()}
	for _, o := range opts {
		o(h)
	}
	h.Register(h.mux)
	return h
}

// Register adds the function's routes to m.
func (h *Handler) Register(m *httpjson.Mux) {
	m.HandleFunc(Pattern, h.servePools)
	if h.numbers != nil {
		m.HandleFunc(NumbersPattern, h.serveNumbers)
	}
}

// ServeHTTP serves the function's routes alone.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Pools validates q and lists one page of pools.
func (h *Handler) Pools(ctx context.Context, q provider.PoolQuery) (Response, error) {
	if err := q.Validate(); err != nil {
		return Response{}, err
	}
	q = q.WithDefaults()
	page, err := h.pools.ListPools(ctx, q)
	if err != nil {
		return Response{}, err
	}
	records := page.Records
	if records == nil {
		records = []provider.Pool{}
	}
	return Response{Provider: h.provider, Total: page.Total, Offset: q.Offset, Limit: q.Limit, Records: records}, nil
}

// Numbers validates q and lists one page of numbers of the pool q.PoolNo.
func (h *Handler) Numbers(ctx context.Context, q provider.NumberQuery) (NumbersResponse, error) {
	if h.numbers == nil {
		return NumbersResponse{}, &provider.Error{Kind: provider.ErrNotFound, Message: "this provider does not list numbers"}
	}
	if q.PoolNo == "" {
		return NumbersResponse{}, provider.Invalid("poolNo", "poolNo is required")
	}
	if err := q.Validate(); err != nil {
		return NumbersResponse{}, err
	}
	q = q.WithDefaults()
	page, err := h.numbers.ListNumbers(ctx, q)
	if err != nil {
		return NumbersResponse{}, err
	}
	records := page.Records
	if records == nil {
		records = []provider.Number{}
	}
	return NumbersResponse{Provider: h.provider, PoolNo: q.PoolNo, Total: page.Total, Offset: q.Offset, Limit: q.Limit, Records: records}, nil
}

func (h *Handler) servePools(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err == nil {
		var out Response
		if out, err = h.Pools(r.Context(), q); err == nil {
			httpjson.Write(w, http.StatusOK, out)
			return
		}
	}
	httpjson.WriteError(w, r, err)
}

func (h *Handler) serveNumbers(w http.ResponseWriter, r *http.Request) {
	q, err := parseNumberQuery(r.PathValue("poolNo"), r.URL.Query())
	if err == nil {
		var out NumbersResponse
		if out, err = h.Numbers(r.Context(), q); err == nil {
			httpjson.Write(w, http.StatusOK, out)
			return
		}
	}
	httpjson.WriteError(w, r, err)
}

// params checks that v has only the allowed parameters, each at most once
// (except the repeatable ones).
func params(v url.Values, allowed []string, repeatable ...string) error {
	for k, vs := range v {
		found := false
		for _, a := range allowed {
			found = found || a == k
		}
		if !found {
			return provider.Invalid(k, "unknown query parameter "+strconv.Quote(k)+"; use "+strings.Join(allowed, ", "))
		}
		rep := false
		for _, a := range repeatable {
			rep = rep || a == k
		}
		if len(vs) > 1 && !rep {
			return provider.Invalid(k, k+" is given more than once")
		}
	}
	return nil
}

// intParam reads an optional whole number.
func intParam(v url.Values, name string) (int, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, provider.Invalid(name, name+" must be a whole number")
	}
	return n, nil
}

// ParseQuery reads GET /pools's parameters: poolNo, name, serviceType,
// subServiceType, offset and limit, all optional.
func ParseQuery(v url.Values) (provider.PoolQuery, error) {
	if err := params(v, []string{"poolNo", "name", "serviceType", "subServiceType", "offset", "limit"}); err != nil {
		return provider.PoolQuery{}, err
	}
	q := provider.PoolQuery{PoolNo: v.Get("poolNo"), Name: v.Get("name")}
	var err error
	for _, f := range []struct {
		name string
		dst  *int
	}{{"serviceType", &q.ServiceType}, {"subServiceType", &q.SubServiceType}, {"offset", &q.Offset}, {"limit", &q.Limit}} {
		if *f.dst, err = intParam(v, f.name); err != nil {
			return q, err
		}
	}
	if err := explicitLimit(v); err != nil {
		return q, err
	}
	return q, q.Validate()
}

// explicitLimit refuses limit=0: an absent limit means the default page
// size, but one that is given must be a real size.
func explicitLimit(v url.Values) error {
	if s := v.Get("limit"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n == 0 {
			return provider.Invalid("limit", fmt.Sprintf("limit must be between 1 and %d", provider.MaxLimit))
		}
	}
	return nil
}

// parseNumberQuery reads GET /pools/{poolNo}/numbers's parameters: numbers
// (repeated or comma-separated), poolType, statusCode, typeCode, offset and
// limit, all optional.
func parseNumberQuery(poolNo string, v url.Values) (provider.NumberQuery, error) {
	if err := params(v, []string{"numbers", "poolType", "statusCode", "typeCode", "offset", "limit"}, "numbers"); err != nil {
		return provider.NumberQuery{}, err
	}
	q := provider.NumberQuery{PoolNo: poolNo}
	for _, s := range v["numbers"] {
		for _, n := range strings.Split(s, ",") {
			if n = strings.TrimSpace(n); n != "" {
				q.Numbers = append(q.Numbers, n)
			}
		}
	}
	var err error
	for _, f := range []struct {
		name string
		dst  *int
	}{{"poolType", &q.PoolType}, {"statusCode", &q.StatusCode}, {"typeCode", &q.TypeCode}, {"offset", &q.Offset}, {"limit", &q.Limit}} {
		if *f.dst, err = intParam(v, f.name); err != nil {
			return q, err
		}
	}
	if q.PoolNo == "" {
		return q, provider.Invalid("poolNo", "poolNo is required")
	}
	if err := explicitLimit(v); err != nil {
		return q, err
	}
	return q, q.Validate()
}

// Endpoints are the NATS endpoints: the same query as JSON (the fields of
// provider.PoolQuery / provider.NumberQuery), the same responses.
func (h *Handler) Endpoints() []trigger.Endpoint {
	eps := []trigger.Endpoint{{Name: "pools", Subject: Subject, Handle: func(ctx context.Context, data []byte) (any, error) {
		var q provider.PoolQuery
		if err := decode(data, &q); err != nil {
			return nil, err
		}
		return h.Pools(ctx, q)
	}}}
	if h.numbers != nil {
		eps = append(eps, trigger.Endpoint{Name: "numbers", Subject: NumbersSubject, Handle: func(ctx context.Context, data []byte) (any, error) {
			var q provider.NumberQuery
			if err := decode(data, &q); err != nil {
				return nil, err
			}
			return h.Numbers(ctx, q)
		}})
	}
	return eps
}

// decode reads a NATS request; an empty one is the empty query.
func decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return httpjson.DecodeJSON(bytes.NewReader(data), v)
}

// Function is the pools function for the runtimes.
func (h *Handler) Function() trigger.Function {
	return trigger.Function{
		Name: "pools",
		HTTP: h,
		Services: []trigger.Service{{
			Name:        "xnum-pools",
			Version:     "1.0.0",
			Description: "Number pools and their numbers (Volcengine VMS NumberPoolList, NumberList)",
			Endpoints:   h.Endpoints(),
		}},
	}
}
