package events

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// DecodeOrderRequested decodes an order.requested message: our CloudEvent
// (structured mode, data as JSON or data_base64) or the bare order JSON. The
// order must be a JSON object with no fields but OrderRequested's, each of
// its type, so a misspelt field is an error rather than a default.
//
// It does not validate the order (see OrderRequested.Validate). Errors are
// provider.ErrInvalidParameter naming the offending field.
func DecodeOrderRequested(b []byte) (OrderRequested, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return OrderRequested{}, provider.Invalid("body", "empty message")
	}
	if b[0] != '{' {
		return OrderRequested{}, provider.Invalid("body", "an order must be a JSON object")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return OrderRequested{}, jsonError("body", err)
	}
	if _, isEvent := top["specversion"]; !isEvent {
		return DecodeOrder(b)
	}
	if err := strictKeys(b, envelopeKeys); err != nil {
		return OrderRequested{}, err
	}
	data, err := eventData(top)
	if err != nil {
		return OrderRequested{}, err
	}
	return DecodeOrder(data)
}

// DecodeOrder decodes a bare order JSON object strictly (see
// DecodeOrderRequested).
func DecodeOrder(b []byte) (OrderRequested, error) {
	var o OrderRequested
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return o, provider.Invalid("body", "an order must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return OrderRequested{}, jsonError("body", err)
	}
	if err := strictKeys(b, orderKeys()); err != nil {
		return OrderRequested{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return OrderRequested{}, provider.Invalid("body", "unexpected data after the order object")
	}
	// A JSON null leaves a field at its zero value; treating it as absent is
	// what Validate then judges.
	return o, nil
}

// envelopeKeys are the CloudEvents attributes an order.requested may use,
// the distributed-tracing extension and requestid among them. Other
// extension attributes are allowed too; a key that differs from one of
// these only by case is refused.
var envelopeKeys = []string{"specversion", "id", "source", "type", "time", "datacontenttype", "dataschema", "subject", "data", "data_base64",
	"traceparent", "tracestate", "requestid"}

// orderKeys are OrderRequested's JSON names.
var orderKeys = sync.OnceValue(func() []string {
	t := reflect.TypeFor[OrderRequested]()
	out := make([]string, t.NumField())
	for i := range out {
		out[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return out
})

// strictKeys refuses a JSON object (b, already known to decode) whose keys
// repeat, or that has a key differing from one of names only by case:
// encoding/json matches keys case-insensitively and keeps the last value,
// so {"quantity":1,"QUANTITY":100} would otherwise buy 100. The error names
// the key.
func strictKeys(b []byte, names []string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil // not an object: the decoder has said so
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := t.(string)
		if seen[key] {
			return provider.Invalid(key, fmt.Sprintf("key %q appears more than once", key))
		}
		seen[key] = true
		if !slices.Contains(names, key) {
			for _, n := range names {
				if strings.EqualFold(n, key) {
					return provider.Invalid(key, fmt.Sprintf("key %q differs from %q only by case; keys are case-sensitive", key, n))
				}
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// eventData checks the envelope attributes an order.requested needs and
// returns its data. Extension attributes are allowed, as CloudEvents says.
func eventData(top map[string]json.RawMessage) ([]byte, error) {
	str := func(name string) (string, error) {
		raw, ok := top[name]
		if !ok {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", provider.Invalid(name, name+" must be a string")
		}
		return s, nil
	}
	sv, err := str("specversion")
	if err != nil {
		return nil, err
	}
	if sv != SpecVersion {
		return nil, provider.Invalid("specversion", fmt.Sprintf("specversion must be %q", SpecVersion))
	}
	typ, err := str("type")
	if err != nil {
		return nil, err
	}
	if typ != TypeOrderRequested {
		return nil, provider.Invalid("type", fmt.Sprintf("event type must be %q, not %q", TypeOrderRequested, typ))
	}
	for _, name := range []string{"id", "source"} {
		v, err := str(name)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return nil, provider.Invalid(name, name+" is required in a CloudEvent")
		}
	}
	ct, err := str("datacontenttype")
	if err != nil {
		return nil, err
	}
	if ct != "" {
		mt, _, perr := mime.ParseMediaType(ct)
		if perr != nil || mt != "application/json" && mt != "text/json" && !strings.HasSuffix(mt, "+json") {
			return nil, provider.Invalid("datacontenttype", "datacontenttype must be application/json")
		}
	}
	raw, hasData := top["data"]
	b64, hasB64 := top["data_base64"]
	switch {
	case hasData && hasB64:
		return nil, provider.Invalid("data", "an event has data or data_base64, not both")
	case hasB64:
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return nil, provider.Invalid("data_base64", "data_base64 must be a base64 string")
		}
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, provider.Invalid("data_base64", "data_base64 is not valid base64")
		}
		return d, nil
	case !hasData || bytes.Equal(bytes.TrimSpace(raw), []byte("null")):
		return nil, provider.Invalid("data", "the event has no data")
	}
	return raw, nil
}

// jsonError names the field a JSON decoding error is about.
func jsonError(whole string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = whole
		}
		return &provider.Error{Kind: provider.ErrInvalidParameter, Field: field,
			Message: fmt.Sprintf("%s must be a JSON %s, not %s", field, jsonKind(te.Type.Kind().String()), te.Value), Err: err}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &provider.Error{Kind: provider.ErrInvalidParameter, Field: whole,
			Message: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err), Err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return provider.Invalid(whole, "truncated JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return provider.Invalid(name, fmt.Sprintf("unknown field %q", name))
	}
	return &provider.Error{Kind: provider.ErrInvalidParameter, Field: whole, Message: err.Error(), Err: err}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "integer"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	}
	return goKind
}
