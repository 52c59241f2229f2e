// Package wait sleeps unless a context ends first: the backoff between a
// client's retries, an emulator's injected latency.
package wait

import (
	"context"
	"time"
)

// For waits d, or until ctx is done, and reports whether it waited all of d.
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
