package queue

import (
	"github.com/xnum-dev/xnum/events"
)

// Permissions are the subjects a NATS user needs to use the objects Setup
// opens as the buy function does — take orders and reports, buy, keep the
// ledger, share the rate, read back what it settles from — and nothing
// more: with them no stream or bucket can be created, changed or deleted,
// nor the durable consumers (an operator does that with xnum setup).
type Permissions struct {
	Publish     []string
	PublishDeny []string // taken out of Publish's wildcards
	Subscribe   []string
}

// FunctionPermissions are the Permissions for the objects of opts.
func FunctionPermissions(opts ...Option) (Permissions, error) {
	c, err := newConfig(opts)
	if err != nil {
		return Permissions{}, err
	}
	var p Permissions
	for _, o := range objects(c) {
		switch o.kind {
		case "stream":
			p.Publish = append(p.Publish, "$JS.API.STREAM.INFO."+o.stream)
		case "bucket":
			p.Publish = append(p.Publish,
				"$JS.API.STREAM.INFO."+o.stream,
				"$JS.API.DIRECT.GET."+o.stream+".>", // Get
				"$KV."+o.name+".>",                  // Create, Update, Delete
			)
		case "consumer":
			p.Publish = append(p.Publish,
				"$JS.API.CONSUMER.INFO."+o.stream+"."+o.name,
				"$JS.API.CONSUMER.MSG.NEXT."+o.stream+"."+o.name, // pull
				"$JS.ACK."+o.stream+"."+o.name+".>",              // ack, nak, in progress, term
			)
			// Whoever may create consumers on its stream must not replace
			// or delete it.
			p.PublishDeny = append(p.PublishDeny,
				"$JS.API.CONSUMER.CREATE."+o.stream+"."+o.name,
				"$JS.API.CONSUMER.CREATE."+o.stream+"."+o.name+".>",
				"$JS.API.CONSUMER.DURABLE.CREATE."+o.stream+"."+o.name,
				"$JS.API.CONSUMER.DELETE."+o.stream+"."+o.name,
			)
		}
	}
	// The streams read back through ordered consumers of the function's
	// own, made and dropped as it goes: the order events (the settler's
	// wake-ups), the reports (its evidence) and the ledger (a watch lists
	// it). NATS cannot tell such a consumer from a durable by its subject.
	for _, s := range []string{c.Stream, ReportsStreamName, "KV_" + c.Bucket} {
		p.Publish = append(p.Publish,
			"$JS.API.CONSUMER.CREATE."+s,
			"$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.DELETE."+s+".*",
			"$JS.API.CONSUMER.INFO."+s+".*",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".*",
		)
	}
	p.Publish = append(p.Publish,
		"$JS.API.STREAM.MSG.GET."+c.Stream, // the message of a max-deliveries advisory
		events.SubjectOrders, events.SubjectNumbers, events.SubjectNumberReports,
	)
	// Every answer (API replies, pulled messages, publish acks) comes to the
	// connection's inbox.
	p.Subscribe = []string{"_INBOX.>"}
	return p, nil
}
