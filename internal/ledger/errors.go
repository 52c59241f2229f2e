package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// Errors of the ledger. Each matches its provider.Kind with errors.Is.
var (
	// ErrNotFound: no order has that id.
	ErrNotFound error = &ledgerError{kind: provider.ErrNotFound, msg: "no order with that id"}
	// ErrStale: the order changed since it was read; read it again.
	ErrStale error = &ledgerError{kind: provider.ErrConflict, msg: "the order changed since it was read"}
	// ErrPayloadConflict: the id is taken by an order with another payload.
	ErrPayloadConflict error = &ledgerError{kind: provider.ErrConflict, msg: "an order with this id and another payload exists"}
)

// ledgerError is the type of the sentinels: unexported, so no importer can
// change what they say.
type ledgerError struct {
	kind provider.Kind
	msg  string
}

func (e *ledgerError) Error() string { return "ledger: " + e.msg }

// Unwrap puts the error in the taxonomy.
func (e *ledgerError) Unwrap() error { return e.kind }

// ClaimedError says another delivery holds a live lease on the order.
type ClaimedError struct {
	Owner string
	Until time.Time
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("ledger: order claimed by %s until %s", e.Owner, e.Until.Format(time.RFC3339Nano))
}

// Unwrap puts a ClaimedError in the taxonomy as provider.ErrConflict.
func (e *ClaimedError) Unwrap() error { return provider.ErrConflict }

// StateError says a transition does not apply to the order's state.
type StateError struct {
	Op     string
	Status Status
	Reason string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("ledger: cannot %s an order that is %s: %s", e.Op, e.Status, e.Reason)
}

// Unwrap puts a StateError in the taxonomy as provider.ErrConflict.
func (e *StateError) Unwrap() error { return provider.ErrConflict }

// unavailable wraps a NATS failure of op as provider.ErrUnavailable.
func unavailable(op string, err error) error {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return err
	}
	return &provider.Error{Kind: provider.ErrUnavailable, Provider: "nats", Op: "ledger " + op,
		Message: "NATS JetStream is unavailable", Err: err}
}
