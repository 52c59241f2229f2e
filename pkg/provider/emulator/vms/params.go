package vms

import (
	"encoding/json"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// params are the API parameters of one call: the JSON body's fields when the
// body is JSON, else the form body's and the query's, as the gateway takes
// simple parameters from either. Names are case-sensitive.
type params struct {
	json  map[string]json.RawMessage // nil unless the body is JSON
	query url.Values                 // query and form values; a fallback to json
}

// parseParams reads the parameters of a request whose body is body.
func parseParams(method, contentType string, query url.Values, body []byte) (params, *apiError) {
	p := params{query: url.Values{}}
	for k, v := range query {
		if k != "Action" && k != "Version" {
			p.query[k] = v
		}
	}
	if method != "POST" || len(body) == 0 {
		return p, nil
	}
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch ct {
	case "application/json":
		if err := json.Unmarshal(body, &p.json); err != nil || p.json == nil {
			return p, newError("InvalidParameter", "body").because("the body is not a JSON object")
		}
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return p, newError("InvalidParameter", "body").because("the body is not a URL-encoded form")
		}
		for k, v := range form {
			p.query[k] = v // the body's value wins over the query's
		}
	default:
		return p, newError("InvalidParameter", "Content-Type").because("the body must be application/json or application/x-www-form-urlencoded")
	}
	return p, nil
}

// raw returns the JSON value of name, if the JSON body has it and it is not null.
func (p params) raw(name string) (json.RawMessage, bool) {
	v, ok := p.json[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// string returns a string parameter. A JSON value must be a string.
func (p params) string(name string) (string, bool, *apiError) {
	if v, ok := p.raw(name); ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false, newError("InvalidParameter", name).because(name + " must be a string")
		}
		return s, s != "", nil
	}
	s := p.query.Get(name)
	return s, s != "", nil
}

// int returns an integer parameter in [lo, hi]. JSON numbers and strings of
// digits are both accepted, as the cloud's own examples send both.
func (p params) int(name string, lo, hi int64) (int, bool, *apiError) {
	var s string
	if v, ok := p.raw(name); ok {
		switch v[0] {
		case '"':
			if err := json.Unmarshal(v, &s); err != nil {
				return 0, false, newError("InvalidParameter", name)
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			s = string(v)
		default:
			return 0, false, newError("InvalidParameter", name).because(name + " must be an integer")
		}
	} else {
		s = p.query.Get(name)
	}
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false, newError("InvalidParameter", name).because(name + " must be an integer from " + strconv.FormatInt(lo, 10) + " to " + strconv.FormatInt(hi, 10))
	}
	return int(n), true, nil
}

// list returns a list parameter: a JSON array of strings, or a
// comma-separated string; in a query or form also repeated keys and the
// SDK's Name.1, Name.2 form.
func (p params) list(name string) ([]string, bool, *apiError) {
	var items []string
	if v, ok := p.raw(name); ok {
		switch v[0] {
		case '[':
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, false, newError("InvalidParameter", name).because(name + " must be an array of strings")
			}
		case '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, false, newError("InvalidParameter", name)
			}
			items = strings.Split(s, ",")
		default:
			return nil, false, newError("InvalidParameter", name).because(name + " must be an array of strings")
		}
	} else {
		for _, s := range p.query[name] {
			items = append(items, strings.Split(s, ",")...)
		}
		var indexed []string
		for k := range p.query {
			if i, ok := strings.CutPrefix(k, name+"."); ok {
				if n, err := strconv.Atoi(i); err == nil && n > 0 {
					indexed = append(indexed, k)
				}
			}
		}
		sort.Slice(indexed, func(a, b int) bool {
			na, _ := strconv.Atoi(indexed[a][len(name)+1:])
			nb, _ := strconv.Atoi(indexed[b][len(name)+1:])
			return na < nb
		})
		for _, k := range indexed {
			items = append(items, p.query.Get(k))
		}
	}
	out := items[:0]
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, len(out) > 0, nil
}

const maxInt32 = math.MaxInt32
