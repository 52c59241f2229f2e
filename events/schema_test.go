package events

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// payloads has one example of every event's data, with every field set.
var payloads = []Payload{
	good,
	NumberPurchased{OrderID: "ord-1", SecretNo: "17000000001", PoolKey: "FC100000001", City: "杭州", SpecID: 1, RequestID: "8F1A-22"},
	NumberExcess{OrderID: "ord-1", SecretNo: "17000000003", PoolKey: "FC100000001", City: "杭州", SpecID: 1, Attempt: 1, RequestID: "8F1A-23"},
	OrderCompleted{OrderID: "ord-1", Numbers: []string{"17000000001", "17000000002"}},
	OrderFailed{OrderID: "ord-1", Numbers: []string{"17000000001"}, Error: Error{Code: "InsufficientInventory", Message: "1 left, 2 wanted", ProviderCode: "isv.NO_AVAILABLE_NUMBER", RequestID: "8F1A-23"}},
	OrderInDoubt{OrderID: "ord-1", Attempt: 2, Numbers: nil, Error: Error{Code: "InDoubt", Message: "connection cut"}},
}

// compileSchemas compiles every embedded schema with a real JSON Schema
// validator, formats asserted.
func compileSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	urls := map[string]string{}
	err := fs.WalkDir(Schemas(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Schemas(), name)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			t.Fatalf("%s has no $id", name)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		urls[name] = id
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*jsonschema.Schema{}
	for name, id := range urls {
		for _, suffix := range []string{"", "#/$defs/data"} {
			s, err := c.Compile(id + suffix)
			if err != nil {
				t.Fatalf("compile %s%s: %v", name, suffix, err)
			}
			out[name+suffix] = s
		}
	}
	return out
}

func validateJSON(s *jsonschema.Schema, b []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// TestSchemasMatchGoTypes proves the Go types and the published schemas
// agree: each marshalled example validates against its schema, whole and
// as data alone, and the schema's data properties are exactly the Go
// type's JSON fields.
func TestSchemasMatchGoTypes(t *testing.T) {
	schemas := compileSchemas(t)
	if len(schemas) != 2*len(subjectOfType) {
		t.Fatalf("%d compiled schemas, want %d (one file per event type)", len(schemas), 2*len(subjectOfType))
	}
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for _, p := range payloads {
		name, err := SchemaFile(p.EventType())
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			ev, err := New(SourceWorker, at, p)
			if err != nil {
				t.Fatal(err)
			}
			whole, _ := json.Marshal(ev)
			if err := validateJSON(schemas[name], whole); err != nil {
				t.Errorf("event %s does not match %s: %v", whole, name, err)
			}
			if err := validateJSON(schemas[name+"#/$defs/data"], ev.Data); err != nil {
				t.Errorf("data %s does not match %s: %v", ev.Data, name, err)
			}

			raw, _ := Schema(p.EventType())
			var doc struct {
				Defs struct {
					Data struct {
						Properties           map[string]any `json:"properties"`
						Required             []string       `json:"required"`
						AdditionalProperties *bool          `json:"additionalProperties"`
					} `json:"data"`
				} `json:"$defs"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			data := doc.Defs.Data
			fields := jsonFields(reflect.TypeOf(p))
			props := mapKeys(data.Properties)
			if !slices.Equal(fields, props) {
				t.Errorf("Go fields %v, schema properties %v", fields, props)
			}
			if data.AdditionalProperties == nil || *data.AdditionalProperties {
				t.Errorf("schema allows properties the Go type does not have")
			}
			if e, ok := data.Properties["error"].(map[string]any); ok {
				props, _ := e["properties"].(map[string]any)
				if got, want := mapKeys(props), jsonFields(reflect.TypeOf(Error{})); !slices.Equal(got, want) {
					t.Errorf("schema error has %v, the Go type Error %v", got, want)
				}
			}
			for _, r := range data.Required {
				if !slices.Contains(fields, r) {
					t.Errorf("schema requires %q, which the Go type lacks", r)
				}
			}
			// Events xnum publishes always carry every field; only an
			// incoming order may leave prefix and displayPool out.
			if p.EventType() != TypeOrderRequested {
				req := slices.Clone(data.Required)
				sort.Strings(req)
				if !slices.Equal(req, fields) {
					t.Errorf("schema requires %v, the Go type always writes %v", req, fields)
				}
			}
		})
	}
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		if tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	sort.Strings(out)
	return out
}

func mapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOrderSchemaAgreesWithValidate: for orders the schema can judge, the
// schema and Validate give the same verdict.
func TestOrderSchemaAgreesWithValidate(t *testing.T) {
	schemas := compileSchemas(t)
	order := schemas["order.requested.json#/$defs/data"]
	mod := func(f func(*OrderRequested)) OrderRequested { o := good; f(&o); return o }
	cases := []OrderRequested{
		good,
		mod(func(o *OrderRequested) { o.Prefix = "" }),
		mod(func(o *OrderRequested) { o.Quantity = 100 }),
		mod(func(o *OrderRequested) { o.SpecID = provider.Spec95; o.City = provider.CityUniversal }),
		mod(func(o *OrderRequested) { o.OrderID = strings.Repeat("z", MaxOrderIDLen) }),
		mod(func(o *OrderRequested) { o.Quantity = 0 }),
		mod(func(o *OrderRequested) { o.Quantity = 101 }),
		mod(func(o *OrderRequested) { o.SpecID = 4 }),
		mod(func(o *OrderRequested) { o.OrderID = "" }),
		mod(func(o *OrderRequested) { o.OrderID = "a.b" }),
		mod(func(o *OrderRequested) { o.OrderID = "_a" }),
		mod(func(o *OrderRequested) { o.OrderID = strings.Repeat("z", MaxOrderIDLen+1) }),
		mod(func(o *OrderRequested) { o.PoolKey = "" }),
		mod(func(o *OrderRequested) { o.PoolKey = "a b" }),
		mod(func(o *OrderRequested) { o.PoolKey = strings.Repeat("k", 65) }),
		mod(func(o *OrderRequested) { o.City = "" }),
		mod(func(o *OrderRequested) { o.Prefix = "12x" }),
		mod(func(o *OrderRequested) { o.Prefix = strings.Repeat("1", 19) }),
	}
	for _, o := range cases {
		b, _ := json.Marshal(o)
		schemaErr := validateJSON(order, b)
		goErr := o.Validate()
		if (schemaErr == nil) != (goErr == nil) {
			t.Errorf("%s: schema says %v, Validate says %v", b, schemaErr, goErr)
		}
	}
	// Shapes the decoder refuses, the schema refuses too.
	for _, in := range []string{
		`{"orderId":"a","poolKey":"P","city":"杭州","specId":1,"quantity":1,"extra":1}`,
		`{"orderId":"a","poolKey":"P","city":"杭州","specId":"1","quantity":1}`,
		`{"orderId":"a","poolKey":"P","city":"杭州","specId":1,"quantity":1.5}`,
		`{"orderId":"a","poolKey":"P","city":"杭州","specId":1,"quantity":1,"displayPool":"true"}`,
	} {
		if _, err := DecodeOrder([]byte(in)); err == nil {
			t.Errorf("DecodeOrder accepted %s", in)
		}
		if validateJSON(order, []byte(in)) == nil {
			t.Errorf("schema accepted %s", in)
		}
	}
	// prefix and displayPool may be left out.
	minimal := `{"orderId":"a","poolKey":"P","city":"杭州","specId":1,"quantity":1}`
	if err := validateJSON(order, []byte(minimal)); err != nil {
		t.Errorf("schema refused %s: %v", minimal, err)
	}
}
