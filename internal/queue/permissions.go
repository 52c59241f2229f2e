package queue

import (
	"github.com/xnum-dev/xnum/events"
)

// Permissions are the subjects a NATS user needs to use the objects Setup
// opens as the buy function does — take orders, buy, keep the ledger, share
// the rate — and nothing more: with them no stream, consumer or bucket can
// be created, changed or deleted (an operator does that with xnum setup).
type Permissions struct {
	Publish   []string
	Subscribe []string
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
		}
	}
	p.Publish = append(p.Publish,
		"$JS.API.STREAM.MSG.GET."+c.Stream, // the message of a max-deliveries advisory
		events.SubjectOrders, events.SubjectNumbers,
	)
	// Every answer (API replies, pulled messages, publish acks) comes to the
	// connection's inbox.
	p.Subscribe = []string{"_INBOX.>"}
	return p, nil
}
