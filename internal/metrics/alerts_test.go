package metrics_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/xnum-dev/xnum/internal/metrics"
)

// The example alert rules are valid for Prometheus — parsed and checked by
// its own rule file parser, expressions and templates included — and every
// series they select is one xnum serves, with the label values it uses.
func TestAlertRules(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile("alerts.yml", false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("alerts.yml: %v", errs)
	}

	// What a buy process serves before anything happened: every series an
	// alert looks at must exist already, or the alert cannot fire.
	m := metrics.New()
	m.WatchState(func(context.Context) (metrics.State, error) { return metrics.State{}, nil })
	scrape(t, m)
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]labels.Labels{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			b := labels.NewScratchBuilder(len(mt.GetLabel()))
			for _, l := range mt.GetLabel() {
				b.Add(l.GetName(), l.GetValue())
			}
			series[f.GetName()] = append(series[f.GetName()], b.Labels())
		}
	}
	selects := func(vs *parser.VectorSelector) bool {
		name := strings.TrimSuffix(strings.TrimSuffix(vs.Name, "_count"), "_sum")
		for _, ls := range series[name] {
			all := true
			for _, mt := range vs.LabelMatchers {
				if mt.Name != labels.MetricName && !mt.Matches(ls.Get(mt.Name)) {
					all = false
				}
			}
			if all {
				return true
			}
		}
		return false
	}

	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			n := 0
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				if vs, ok := node.(*parser.VectorSelector); ok {
					n++
					if !selects(vs) {
						t.Errorf("%s: %s selects no series xnum serves", r.Alert, vs)
					}
				}
				return nil
			})
			if n == 0 || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.For == 0 {
				t.Errorf("%s: want a selector, a severity, a summary and a for: %+v", r.Alert, r)
			}
		}
	}
	// The signals the issue asks an alert of: in doubt, an old open order,
	// throttled buys, the failed rate.
	for _, want := range []string{"XnumOrderInDoubt", "XnumOrderStuck", "XnumBuysThrottled", "XnumOrdersFailing"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s among %v", want, alerts)
		}
	}
}

// The README's Operating section shows the rules as they are in the file.
func TestREADMEShowsTheAlertRules(t *testing.T) {
	rules, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(rules)+"```\n") {
		t.Error("README.md does not show internal/metrics/alerts.yml as it is, in a yaml block")
	}
}
