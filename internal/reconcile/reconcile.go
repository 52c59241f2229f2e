// Package reconcile settles orders whose buy had an unknown outcome, and
// gives back the numbers of failed orders: the operator's side of the money
// rule.
//
// Dyplsapi has no API that lists the numbers in a pool, so an attempt in
// doubt is settled from evidence, each kind recorded in the ledger with who
// settled it:
//   - a number the operator names, checked with QuerySecretNoDetail;
//   - the cloud's NumberManagementReport messages: a number created in the
//     attempt's window, confirmed in the order's pool with
//     QuerySecretNoDetail — exactly one, or nothing is settled;
//   - the operator's word that nothing was bought, once the attempt's answer
//     can no longer land.
//
// Evidence must fit the order exactly (pool, city, number type, prefix;
// evidence.go), fall in the attempt's window (from when it began to when its
// answer could last have come), belong to no order, and not be what
// another attempt without a result could have bought.
//
// A settled order goes back to accepted and is published again
// (internal/redrive), so a worker buys the rest or ends it; the reconcile
// itself never buys.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
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

// Redriver gives an order a driver again: it publishes its order.requested
// message (*redrive.Redriver).
type Redriver interface {
	Order(ctx context.Context, o *ledger.Order) (*ledger.Order, error)
}

// Reconciler settles and releases. Build it with New.
type Reconciler struct {
	ledger   *ledger.Ledger
	provider Provider
	redrive  Redriver
	slack    time.Duration
	now      func() time.Time
	obs      Observer
}

// Observer is told of each settlement, as "settled" (internal/metrics
// implements it, as it does the worker's Observer).
type Observer interface {
	Order(ctx context.Context, outcome string, age time.Duration)
}

// WithObserver sets the Observer (default: none).
func WithObserver(o Observer) Option { return func(r *Reconciler) { r.obs = o } }

// Option configures a Reconciler.
type Option func(*Reconciler)

// WithSlack replaces DefaultSlack.
func WithSlack(d time.Duration) Option { return func(r *Reconciler) { r.slack = d } }

// WithClock replaces time.Now for deciding whether an attempt may still be
// answered; give the ledger the same clock.
func WithClock(now func() time.Time) Option { return func(r *Reconciler) { r.now = now } }

// New returns a Reconciler over the ledger and the provider that publishes
// settled orders again with rd.
func New(l *ledger.Ledger, p Provider, rd Redriver, opts ...Option) *Reconciler {
	r := &Reconciler{ledger: l, provider: p, redrive: rd, slack: DefaultSlack, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Bought settles the attempt in doubt of order id as having bought secretNo,
// after QuerySecretNoDetail shows it in the order's pool and the evidence
// rules hold; then the order is published again.
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
	return r.settleBought(ctx, o, proofFromDetail(d), by, nil)
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
// NumberManagementReport messages: the numbers created in the attempt's
// window, not deleted since, that fit the order and no order holds, and that
// QuerySecretNoDetail finds in the order's pool. Exactly one such number
// settles it as bought; none or several change nothing and say why.
func (r *Reconciler) FromReports(ctx context.Context, id string, reports []Report, by string) (*ledger.Order, error) {
	o, err := r.inDoubt(ctx, id)
	if err != nil {
		return nil, err
	}
	all, err := r.ledger.List(ctx)
	if err != nil {
		return nil, err
	}
	from, to := window(o.Attempt, r.slack)
	// A number deleted at or after its creation is not the attempt's (it
	// may have been released and bought again, so earlier deletions count
	// for nothing).
	deleted := map[string]time.Time{}
	for _, rep := range reports {
		if at, _ := rep.time(); rep.Status == ReportDeleted && at.After(deleted[rep.SecretNo]) {
			deleted[rep.SecretNo] = at
		}
	}
	var found []Proof
	var checked, refused []string
	seen := map[string]bool{} // MNS delivers at least once: one message may come twice
	for _, rep := range reports {
		at, _ := rep.time()
		del, wasDeleted := deleted[rep.SecretNo]
		if rep.Status != ReportCreated || at.Before(from) || at.After(to) || (wasDeleted && !del.Before(at)) || seen[rep.SecretNo] {
			continue
		}
		seen[rep.SecretNo] = true
		if fits(o, Proof{SecretNo: rep.SecretNo, City: rep.City}) != nil {
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
		p := proofFromDetail(d)
		p.Source = "NumberManagementReport (created " + rep.OperatingTime + "), confirmed by " + p.Source
		if err := check(o, p, all, r.slack); err != nil {
			refused = append(refused, err.Error())
			continue
		}
		found = append(found, p)
	}
	switch len(found) {
	case 0:
		msg := fmt.Sprintf("no report shows a number created in pool %s within attempt %d's window (%s to %s) that fits the order; %d candidates checked %v",
			o.Request.PoolKey, o.Attempt.Seq, stamp(from), stamp(to), len(checked), checked)
		if len(refused) > 0 {
			msg += "; refused: " + strings.Join(refused, "; ")
		}
		return nil, &provider.Error{Kind: provider.ErrNotFound, Message: msg + ": nothing settled"}
	case 1:
		return r.settleBought(ctx, o, found[0], by, all)
	}
	nos := make([]string, len(found))
	for i, p := range found {
		nos[i] = p.SecretNo
	}
	return nil, &provider.Error{Kind: provider.ErrConflict, Message: fmt.Sprintf(
		"the reports show %d numbers created in pool %s within attempt %d's window %v; the evidence is ambiguous: name one with --secret-no, nothing settled",
		len(found), o.Request.PoolKey, o.Attempt.Seq, nos)}
}

// NothingBought settles the attempt in doubt of order id on the operator's
// word that it bought nothing; then the order is published again. It is
// refused while the attempt's answer could still arrive and be recorded
// (Attempt.RecordBy): a number landing after the word would be bought on
// top of it.
func (r *Reconciler) NothingBought(ctx context.Context, id, by, why string) (*ledger.Order, error) {
	o, err := r.inDoubt(ctx, id)
	if err != nil {
		return nil, err
	}
	if by == "" {
		return nil, provider.Invalid("by", "say who gives their word that nothing was bought")
	}
	if until := o.Attempt.RecordedBy(); r.now().Before(until) {
		return nil, &ledger.StateError{Op: "settle as nothing bought", Status: o.Status, Reason: fmt.Sprintf(
			"attempt %d may still be answered and recorded until %s; nothing settled", o.Attempt.Seq, stamp(until))}
	}
	evidence := "the operator's word that nothing was bought"
	if why != "" {
		evidence += ": " + why
	}
	settled, err := r.ledger.Settle(ctx, id, ledger.Settlement{Attempt: o.Attempt.Seq, Outcome: ledger.OutcomeNotBought, By: by, Evidence: evidence})
	if err != nil {
		return nil, err
	}
	return r.drive(ctx, settled)
}

// Release gives back the numbers of order id that are not released yet
// (ReleaseSecretNo; irreversible), recording each in the ledger: every
// number of a failed order, and the excess numbers of an order that ended.
// A number the pool no longer holds is recorded as released without a call.
func (r *Reconciler) Release(ctx context.Context, id, by string) (released []string, err error) {
	o, err := r.ledger.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var give []ledger.Number
	switch o.Status {
	case ledger.StatusFailed:
		give = append(slices.Clone(o.Numbers), o.Excess...)
	case ledger.StatusCompleted:
		give = o.Excess
	}
	if len(give) == 0 {
		return nil, &ledger.StateError{Op: "release", Status: o.Status, Reason: "only a failed order's numbers, and an ended order's excess numbers, may be released"}
	}
	if by == "" {
		return nil, provider.Invalid("by", "say who releases the numbers")
	}
	for _, n := range give {
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

func (r *Reconciler) settleBought(ctx context.Context, o *ledger.Order, p Proof, by string, all []*ledger.Order) (*ledger.Order, error) {
	if by == "" {
		return nil, provider.Invalid("by", "say who settles the order")
	}
	if all == nil {
		var err error
		if all, err = r.ledger.List(ctx); err != nil {
			return nil, err
		}
	}
	if err := check(o, p, all, r.slack); err != nil {
		return nil, err
	}
	settled, err := r.ledger.Settle(ctx, o.OrderID, ledger.Settlement{Attempt: o.Attempt.Seq, Outcome: ledger.OutcomeBought, SecretNo: p.SecretNo, By: by,
		Evidence: fmt.Sprintf("%s: %s in pool %s, bought at %s", p.Source, p.SecretNo, o.Request.PoolKey, stamp(p.BoughtAt))})
	if err != nil {
		return nil, err
	}
	return r.drive(ctx, settled)
}

// drive publishes a settled order again, so a worker buys the rest or ends
// it. A failed publish leaves it settled and accepted: the workers' sweep
// publishes it.
func (r *Reconciler) drive(ctx context.Context, settled *ledger.Order) (*ledger.Order, error) {
	if r.obs != nil {
		r.obs.Order(ctx, "settled", max(0, r.now().Sub(settled.CreatedAt)))
	}
	o, err := r.redrive.Order(ctx, settled)
	if err != nil {
		return settled, fmt.Errorf("settled, but not yet published again (the workers' sweep will publish it within a minute or two): %w", err)
	}
	return o, nil
}

// Resume publishes order id again, for an open order an operator finds
// nobody working on (an in-doubt order is settled first, an ended one has
// nothing left to do).
func (r *Reconciler) Resume(ctx context.Context, id string) (*ledger.Order, error) {
	o, err := r.ledger.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case o.Status == ledger.StatusInDoubt:
		return nil, &ledger.StateError{Op: "resume", Status: o.Status, Reason: "settle its attempt in doubt first (reconcile)"}
	case o.Status.Terminal():
		return nil, &ledger.StateError{Op: "resume", Status: o.Status, Reason: "it has ended"}
	}
	return r.redrive.Order(ctx, o)
}
