// Package reconcile settles orders whose buy had an unknown outcome, and
// gives back the numbers of failed orders: the operator's side of the money
// rule.
//
// Dyplsapi has no API that lists the numbers in a pool, so an attempt in
// doubt is settled from evidence, each kind recorded in the ledger with who
// settled it:
//   - a number the operator names, checked with QuerySecretNoDetail: it must
//     be in the order's pool, and bought after the attempt began;
//   - the cloud's NumberManagementReport messages: a number created after the
//     attempt began, that no order holds, confirmed in the order's pool with
//     QuerySecretNoDetail — exactly one, or nothing is settled;
//   - the operator's word that nothing was bought.
//
// Then the order continues (the rest is bought) or ends, through the same
// worker code as any delivery.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// DefaultSlack is how much earlier than the attempt's start a purchase time
// may be and still be the attempt's: the provider's clock and ours differ,
// and its times have one-second resolution.
const DefaultSlack = 5 * time.Second

// Provider looks numbers up and gives them back.
type Provider interface {
	provider.NumberInspector
	provider.Releaser
}

// Resumer continues an order after it was settled (worker.Worker).
type Resumer interface {
	Resume(ctx context.Context, id string) error
}

// Reconciler settles and releases. Build it with New.
type Reconciler struct {
	ledger   *ledger.Ledger
	provider Provider
	resumer  Resumer
	slack    time.Duration
}

// Option configures a Reconciler.
type Option func(*Reconciler)

// WithSlack replaces DefaultSlack.
func WithSlack(d time.Duration) Option { return func(r *Reconciler) { r.slack = d } }

// New returns a Reconciler over the ledger, the provider and the worker that
// continues settled orders.
func New(l *ledger.Ledger, p Provider, res Resumer, opts ...Option) *Reconciler {
	r := &Reconciler{ledger: l, provider: p, resumer: res, slack: DefaultSlack}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Bought settles the attempt in doubt of order id as having bought secretNo,
// after QuerySecretNoDetail shows it in the order's pool, bought after the
// attempt began; then the order continues.
func (r *Reconciler) Bought(ctx context.Context, id, secretNo, by string) (*ledger.Order, error) {
	o, err := r.inDoubt(ctx, id)
	if err != nil {
		return nil, err
	}
	if secretNo == "" {
		return nil, provider.Invalid("secretNo", "name the number the attempt bought")
	}
	d, err := r.provider.NumberDetail(ctx, o.Request.PoolKey, secretNo)
	if errors.Is(err, provider.ErrNotFound) {
		return nil, provider.Invalid("secretNo", fmt.Sprintf("number %s is not in pool %s (QuerySecretNoDetail)", secretNo, o.Request.PoolKey))
	}
	if err != nil {
		return nil, fmt.Errorf("check number %s: %w", secretNo, err)
	}
	return r.settleBought(ctx, id, ledger.ProofFromDetail(d), by)
}

// Report is one NumberManagementReport message of Dyplsapi: a number created
// (Status 1) or deleted (Status 2) in the account's pools.
type Report struct {
	SecretNo      string `json:"secretNo"`
	City          string `json:"city"`
	PartnerKey    string `json:"partnerKey"`
	OperatingTime string `json:"operatingTime"` // 2006-01-02 15:04:05, Asia/Shanghai
	Status        int    `json:"status"`
}

// Report statuses.
const (
	ReportCreated = 1
	ReportDeleted = 2
)

// ParseReports reads NumberManagementReport messages as a JSON array or as
// JSON lines. A message that does not parse, or lacks a number, status or
// time, is an error naming it: evidence about money is not skipped silently.
func ParseReports(in io.Reader) ([]Report, error) {
	b, err := io.ReadAll(io.LimitReader(in, 64<<20))
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(b))
	var out []Report
	if strings.HasPrefix(text, "[") {
		if err := json.Unmarshal([]byte(text), &out); err != nil {
			return nil, fmt.Errorf("reports: %w", err)
		}
	} else {
		for i, line := range strings.Split(text, "\n") {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			var rep Report
			if err := json.Unmarshal([]byte(line), &rep); err != nil {
				return nil, fmt.Errorf("reports: line %d: %w", i+1, err)
			}
			out = append(out, rep)
		}
	}
	for i, rep := range out {
		if _, err := rep.time(); rep.SecretNo == "" || (rep.Status != ReportCreated && rep.Status != ReportDeleted) || err != nil {
			return nil, fmt.Errorf("reports: message %d (%+v) needs a secretNo, status 1 or 2 and an operatingTime like 2006-01-02 15:04:05", i+1, rep)
		}
	}
	return out, nil
}

var shanghai = time.FixedZone("Asia/Shanghai", 8*3600)

func (rep Report) time() (time.Time, error) {
	return time.ParseInLocation("2006-01-02 15:04:05", rep.OperatingTime, shanghai)
}

// FromReports settles the attempt in doubt of order id from the cloud's
// NumberManagementReport messages: the numbers created after the attempt
// began, not deleted since, that no order holds, and that QuerySecretNoDetail
// finds in the order's pool. Exactly one such number settles it as bought;
// none or several change nothing and say why.
func (r *Reconciler) FromReports(ctx context.Context, id string, reports []Report, by string) (*ledger.Order, error) {
	o, err := r.inDoubt(ctx, id)
	if err != nil {
		return nil, err
	}
	since := o.Attempt.StartedAt.Add(-r.slack)
	// A number deleted at or after its creation is not the attempt's (it
	// may have been released and bought again, so earlier deletions count
	// for nothing).
	deleted := map[string]time.Time{}
	for _, rep := range reports {
		if at, _ := rep.time(); rep.Status == ReportDeleted && at.After(deleted[rep.SecretNo]) {
			deleted[rep.SecretNo] = at
		}
	}
	held, err := r.heldNumbers(ctx)
	if err != nil {
		return nil, err
	}
	var found []ledger.Proof
	var checked []string
	seen := map[string]bool{} // MNS delivers at least once: one message may come twice
	for _, rep := range reports {
		at, _ := rep.time()
		del, wasDeleted := deleted[rep.SecretNo]
		if rep.Status != ReportCreated || at.Before(since) || (wasDeleted && !del.Before(at)) || held[rep.SecretNo] || seen[rep.SecretNo] {
			continue
		}
		seen[rep.SecretNo] = true
		if rep.City != "" && o.Request.City != provider.CityUniversal && !strings.HasPrefix(rep.City, o.Request.City) && !strings.HasPrefix(o.Request.City, rep.City) {
			continue
		}
		checked = append(checked, rep.SecretNo)
		d, err := r.provider.NumberDetail(ctx, o.Request.PoolKey, rep.SecretNo)
		if errors.Is(err, provider.ErrNotFound) {
			continue // created in another pool
		}
		if err != nil {
			return nil, fmt.Errorf("check number %s: %w", rep.SecretNo, err)
		}
		p := ledger.ProofFromDetail(d)
		p.Source = "NumberManagementReport (created " + rep.OperatingTime + "), confirmed by " + p.Source
		found = append(found, p)
	}
	switch len(found) {
	case 0:
		return nil, &provider.Error{Kind: provider.ErrNotFound, Message: fmt.Sprintf(
			"no report shows a number created in pool %s after attempt %d began (%s); %d candidates checked %v: nothing settled",
			o.Request.PoolKey, o.Attempt.Seq, o.Attempt.StartedAt.Format(time.RFC3339), len(checked), checked)}
	case 1:
		return r.settleBought(ctx, id, found[0], by)
	}
	nos := make([]string, len(found))
	for i, p := range found {
		nos[i] = p.SecretNo
	}
	return nil, &provider.Error{Kind: provider.ErrConflict, Message: fmt.Sprintf(
		"the reports show %d numbers created in pool %s since attempt %d began %v; the evidence is ambiguous: name one with --secret-no, nothing settled",
		len(found), o.Request.PoolKey, o.Attempt.Seq, nos)}
}

// NothingBought settles the attempt in doubt of order id on the operator's
// word that it bought nothing; then the order continues.
func (r *Reconciler) NothingBought(ctx context.Context, id, by, why string) (*ledger.Order, error) {
	o, err := r.inDoubt(ctx, id)
	if err != nil {
		return nil, err
	}
	if by == "" {
		return nil, provider.Invalid("by", "say who gives their word that nothing was bought")
	}
	evidence := "the operator's word that nothing was bought"
	if why != "" {
		evidence += ": " + why
	}
	if _, err := r.ledger.Settle(ctx, id, ledger.Settlement{Attempt: o.Attempt.Seq, Outcome: ledger.OutcomeNotBought, By: by, Evidence: evidence}); err != nil {
		return nil, err
	}
	return r.resume(ctx, id)
}

// Release gives back every number of the failed order id that is not
// released yet (ReleaseSecretNo; irreversible), recording each in the ledger.
// A number the pool no longer holds is recorded as released without a call.
func (r *Reconciler) Release(ctx context.Context, id, by string) (released []string, err error) {
	o, err := r.ledger.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.Status != ledger.StatusFailed {
		return nil, &ledger.StateError{Op: "release", Status: o.Status, Reason: "only a failed order's numbers may be released"}
	}
	if by == "" {
		return nil, provider.Invalid("by", "say who releases the numbers")
	}
	for _, n := range o.Numbers {
		if n.Released != nil {
			continue
		}
		evidence := "ReleaseSecretNo"
		_, derr := r.provider.NumberDetail(ctx, o.Request.PoolKey, n.SecretNo)
		switch {
		case errors.Is(derr, provider.ErrNotFound):
			evidence = "QuerySecretNoDetail: no longer in pool " + o.Request.PoolKey
		case derr != nil:
			return released, fmt.Errorf("check number %s: %w", n.SecretNo, derr)
		default:
			if err := r.provider.Release(ctx, o.Request.PoolKey, n.SecretNo); err != nil {
				return released, fmt.Errorf("release %s: %w", n.SecretNo, err)
			}
		}
		if _, err := r.ledger.MarkReleased(ctx, id, n.SecretNo, by, evidence); err != nil {
			return released, fmt.Errorf("record the release of %s: %w", n.SecretNo, err)
		}
		released = append(released, n.SecretNo)
	}
	return released, nil
}

func (r *Reconciler) inDoubt(ctx context.Context, id string) (*ledger.Order, error) {
	o, err := r.ledger.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.Status != ledger.StatusInDoubt || o.Attempt == nil {
		return nil, &ledger.StateError{Op: "reconcile", Status: o.Status, Reason: "only an order in doubt is reconciled"}
	}
	return o, nil
}

func (r *Reconciler) settleBought(ctx context.Context, id string, p ledger.Proof, by string) (*ledger.Order, error) {
	if by == "" {
		return nil, provider.Invalid("by", "say who settles the order")
	}
	if _, err := r.ledger.SettleBought(ctx, id, p, by, r.slack); err != nil {
		return nil, err
	}
	return r.resume(ctx, id)
}

// resume continues the settled order and returns it as it ended up. A
// failure to continue leaves it settled and accepted, for the next delivery
// or another run.
func (r *Reconciler) resume(ctx context.Context, id string) (*ledger.Order, error) {
	rerr := r.resumer.Resume(ctx, id)
	o, err := r.ledger.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return o, fmt.Errorf("settled, but continuing the order failed (a worker will pick it up): %w", rerr)
	}
	return o, nil
}

func (r *Reconciler) heldNumbers(ctx context.Context) (map[string]bool, error) {
	all, err := r.ledger.List(ctx)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, o := range all {
		for _, n := range o.Numbers {
			held[n.SecretNo] = true
		}
	}
	return held, nil
}
