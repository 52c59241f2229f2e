package buy

import (
	"context"
	"log/slog"

	"github.com/xnum-dev/xnum/internal/reports"
	"github.com/xnum-dev/xnum/internal/settle"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// reportIntake takes the cloud's NumberManagementReport messages that come
// through an event invocation — on FC, the EventBridge trigger of the MNS
// queue the reports go to — stores each on the reports stream, and then
// lets the settler look at the attempts in doubt: a report settles its
// attempt in the invocation that brought it.
type reportIntake struct {
	pub     reports.Publisher
	settler *settle.Settler
	log     *slog.Logger
}

// HandleEvents stores the reports. A message whose report cannot be stored
// now fails (its trigger delivers it again); one that is no report, or a
// report without its number, status or time, is logged and dropped:
// delivering it again cannot make it evidence. The settlement pass after
// them fails nothing: the reports are stored, and the next pass (the
// timer's drain, a long-lived settler) tries again.
func (r reportIntake) HandleEvents(ctx context.Context, msgs []trigger.Message) []error {
	errs := make([]error, len(msgs))
	stored := 0
	for i, m := range msgs {
		log := r.log.With("source", m.Source, "messageId", m.ID)
		reps, err := reports.Publish(ctx, r.pub, m.Body)
		switch {
		case provider.KindOf(err) == provider.ErrUnavailable:
			log.WarnContext(ctx, "number report not stored; the trigger will deliver it again", "err", err)
			errs[i] = err
		case err != nil:
			log.WarnContext(ctx, "not a NumberManagementReport; dropped", "err", err, "body", string(m.Body))
		default:
			stored += len(reps)
			for _, rep := range reps {
				log.InfoContext(ctx, "number report stored", "secretNo", rep.SecretNo, "status", rep.Status, "operatingTime", rep.OperatingTime)
			}
		}
	}
	if stored > 0 {
		st, err := r.settler.Pass(ctx)
		if err != nil {
			r.log.WarnContext(ctx, "settling from the reports failed; the next pass tries again", "err", err)
		} else if st.Open > 0 {
			r.log.InfoContext(ctx, "settlement pass", "inDoubt", st.Open, "settled", st.Settled, "leftToOperator", st.Left, "waiting", st.Waiting)
		}
	}
	return errs
}
