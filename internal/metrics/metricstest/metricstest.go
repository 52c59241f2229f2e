// Package metricstest reads what a /metrics endpoint serves, for tests:
// the Prometheus text format parsed by the Prometheus library's own parser
// into values by name and labels.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are the values of one scrape by Key. A histogram gives its
// count and sum as name_count and name_sum.
type Samples map[string]float64

// Key is how Samples names a series: name{k="v",…} with the labels in the
// order given (pairs of name and value), or the bare name.
func Key(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name + "{")
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", labels[i], labels[i+1])
	}
	return b.String() + "}"
}

// Get is the value of name with exactly labels (pairs, in any order); ok is
// false when the series is absent.
func (s Samples) Get(name string, labels ...string) (float64, bool) {
	v, ok := s[key(name, pairs(labels))]
	return v, ok
}

// Has reports whether any series of the metric family name is present.
func (s Samples) Has(name string) bool {
	for k := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

func pairs(labels []string) [][2]string {
	var out [][2]string
	for i := 0; i+1 < len(labels); i += 2 {
		out = append(out, [2]string{labels[i], labels[i+1]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func key(name string, ls [][2]string) string {
	flat := make([]string, 0, 2*len(ls))
	for _, l := range ls {
		flat = append(flat, l[0], l[1])
	}
	return Key(name, flat...)
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := Samples{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var ls [][2]string
			for _, l := range m.GetLabel() {
				ls = append(ls, [2]string{l.GetName(), l.GetValue()})
			}
			sort.Slice(ls, func(i, j int) bool { return ls[i][0] < ls[j][0] })
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key(name, ls)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key(name, ls)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key(name+"_count", ls)] = float64(m.GetHistogram().GetSampleCount())
				out[key(name+"_sum", ls)] = m.GetHistogram().GetSampleSum()
			default:
				out[key(name, ls)] = m.GetUntyped().GetValue()
			}
		}
	}
	return out, nil
}

// Scrape GETs url and parses it; the test fails when that does not work.
func Scrape(t testing.TB, url string) Samples {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s: %.300s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s, err := Parse(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not the Prometheus text format: %v", url, err)
	}
	return s
}
