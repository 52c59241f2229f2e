// Package remain is the remain function: how many numbers can still be
// bought, over HTTP (GET /remain) and NATS (xnum.remain), from a provider's
// inventory (Dyplsapi QuerySecretNoRemain).
package remain

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Routes and subjects of the function.
const (
	Pattern = "GET /remain"
	Subject = "xnum.remain"
)

// Inventory is what the function needs of a provider.
type Inventory interface {
	Remain(ctx context.Context, q provider.RemainQuery) (provider.RemainResult, error)
}

// Response is the answer of GET /remain and xnum.remain. Cities is present
// only for city 全国列表, and then Amount is their sum.
type Response struct {
	Provider string                `json:"provider"`
	City     string                `json:"city"`
	SpecID   provider.SpecID       `json:"specId"`
	Prefix   string                `json:"prefix"`
	Amount   int64                 `json:"amount"`
	Cities   []provider.CityAmount `json:"cities,omitzero"`
}

// Handler serves the function.
type Handler struct {
	provider string
	inv      Inventory
	mux      *httpjson.Mux
}

// New returns the function over inv; providerName is what the answers say
// they came from ("aliyun").
func New(providerName string, inv Inventory) *Handler {
	h := &Handler{provider: providerName, inv: inv, mux: httpjson.NewMux()}
	h.Register(h.mux)
	return h
}

// Register adds the function's routes to m, so several functions can share
// one server (xnum dev).
func (h *Handler) Register(m *httpjson.Mux) {
	m.HandleFunc(Pattern, h.serveRemain)
}

// ServeHTTP serves the function's routes alone.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Remain validates q and asks the provider.
func (h *Handler) Remain(ctx context.Context, q provider.RemainQuery) (Response, error) {
	if err := q.Validate(); err != nil {
		return Response{}, err
	}
	res, err := h.inv.Remain(ctx, q)
	if err != nil {
		return Response{}, err
	}
	out := Response{Provider: h.provider, City: q.City, SpecID: q.SpecID, Prefix: q.Prefix, Amount: res.Amount}
	if q.City == provider.CityNationwideList {
		out.Cities = append([]provider.CityAmount{}, res.Cities...)
		out.Amount = 0
		for _, c := range out.Cities {
			out.Amount += c.Amount
		}
	}
	return out, nil
}

func (h *Handler) serveRemain(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err == nil {
		var out Response
		if out, err = h.Remain(r.Context(), q); err == nil {
			httpjson.Write(w, http.StatusOK, out)
			return
		}
	}
	httpjson.WriteError(w, r, err)
}

// ParseQuery reads GET /remain's parameters: city, specId and an optional
// prefix. Unknown or repeated parameters and a specId that is not a number
// are invalid, naming the parameter.
func ParseQuery(v url.Values) (provider.RemainQuery, error) {
	for k, vs := range v {
		switch k {
		case "city", "specId", "prefix":
			if len(vs) > 1 {
				return provider.RemainQuery{}, provider.Invalid(k, k+" is given more than once")
			}
		default:
			return provider.RemainQuery{}, provider.Invalid(k, "unknown query parameter "+strconv.Quote(k)+"; use city, specId and prefix")
		}
	}
	q := provider.RemainQuery{City: v.Get("city"), Prefix: v.Get("prefix")}
	spec := v.Get("specId")
	if spec == "" {
		return q, provider.Invalid("specId", "specId is required: 1, 2 or 3")
	}
	n, err := strconv.Atoi(spec)
	if err != nil {
		return q, provider.Invalid("specId", "specId must be a number: 1, 2 or 3")
	}
	q.SpecID = provider.SpecID(n)
	return q, q.Validate()
}

// Endpoint is the NATS endpoint: the same query as JSON
// ({"city","specId","prefix"}), the same Response.
func (h *Handler) Endpoint() trigger.Endpoint {
	return trigger.Endpoint{Name: "remain", Subject: Subject, Handle: func(ctx context.Context, data []byte) (any, error) {
		var q provider.RemainQuery
		if err := httpjson.DecodeJSON(bytes.NewReader(data), &q); err != nil {
			return nil, err
		}
		return h.Remain(ctx, q)
	}}
}

// Function is the remain function for the runtimes.
func (h *Handler) Function() trigger.Function {
	return trigger.Function{
		Name: "remain",
		HTTP: h,
		Services: []trigger.Service{{
			Name:        "xnum-remain",
			Version:     "1.0.0",
			Description: "How many privacy numbers can be bought (Dyplsapi QuerySecretNoRemain)",
			Endpoints:   []trigger.Endpoint{h.Endpoint()},
		}},
	}
}
