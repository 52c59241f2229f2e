package natsrpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/xnum-dev/xnum/internal/embednats"
	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/testutil"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc"
	"github.com/xnum-dev/xnum/internal/trigger/natsrpc/natsrpctest"
	"github.com/xnum-dev/xnum/pkg/provider"
)

type query struct {
	City   string `json:"city"`
	SpecID int    `json:"specId"`
}

const secret = "NatsSecretMustNotLeak"

func echoService() trigger.Service {
	return trigger.Service{
		Name:    "xnum-test",
		Version: "1.2.3",
		Endpoints: []trigger.Endpoint{{
			Name:    "echo",
			Subject: "xnum.test.echo",
			Handle: func(ctx context.Context, data []byte) (any, error) {
				var q query
				if err := json.Unmarshal(data, &q); err != nil {
					return nil, provider.Invalid("body", "the request must be a JSON object")
				}
				switch q.City {
				case "throttle":
					return nil, &provider.Error{Kind: provider.ErrThrottled, Provider: "aliyun", Message: "flow control"}
				case "internal":
					return nil, errors.New("dial https://x/?Signature=" + secret)
				case "panic":
					panic("kaput")
				case "deadline":
					if _, ok := ctx.Deadline(); !ok {
						return nil, errors.New("no deadline")
					}
				}
				return map[string]any{"city": q.City, "specId": q.SpecID, "requestId": logging.RequestID(ctx)}, nil
			},
		}},
	}
}

func setup(t *testing.T) (*nats.Conn, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	nc := natsrpctest.Serve(t, []trigger.Service{echoService()}, natsrpc.WithLogger(logging.New(logs, logging.Options{})))
	// Wait until the service answers, so requests do not race its
	// subscription.
	if err := natsrpctest.Request(t, nc, "xnum.test.echo", query{City: "杭州", SpecID: 1}, nil); err != nil {
		t.Fatal(err)
	}
	return nc, logs
}

func TestRequestReply(t *testing.T) {
	nc, logs := setup(t)
	ctx, cancel := context.WithTimeout(logging.WithRequestID(context.Background(), "nats-req-1"), 5*time.Second)
	defer cancel()
	var out map[string]any
	if err := natsrpc.Request(ctx, nc, "xnum.test.echo", query{City: "杭州", SpecID: 1}, &out); err != nil {
		t.Fatal(err)
	}
	if out["city"] != "杭州" || out["specId"] != float64(1) || out["requestId"] != "nats-req-1" {
		t.Errorf("reply = %v", out)
	}
	if err := natsrpc.Request(ctx, nc, "xnum.test.echo", query{City: "deadline"}, &out); err != nil {
		t.Errorf("request without a deadline: %v", err)
	}
	if !strings.Contains(logs.String(), `"requestId":"nats-req-1"`) {
		t.Errorf("logs lack the request id:\n%s", logs.String())
	}
}

func TestErrors(t *testing.T) {
	nc, logs := setup(t)
	for _, tc := range []struct {
		name    string
		data    []byte
		status  string
		code    string
		message string
	}{
		{"invalid", []byte(`[1,2]`), "400", "InvalidParameter", "the request must be a JSON object"},
		{"throttled", []byte(`{"city":"throttle"}`), "429", "Throttled", "aliyun: flow control"},
		{"internal", []byte(`{"city":"internal"}`), "500", "Internal", "internal error; the request id names it in the logs"},
		{"panic", []byte(`{"city":"panic"}`), "500", "Internal", "internal error; the request id names it in the logs"},
		{"too large", bytes.Repeat([]byte(" "), httpjson.MaxBodyBytes+1), "413", "PayloadTooLarge", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := nats.NewMsg("xnum.test.echo")
			msg.Data = tc.data
			msg.Header.Set(natsrpc.HeaderRequestID, "err-"+tc.code)
			reply, err := nc.RequestMsg(msg, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := reply.Header.Get(micro.ErrorCodeHeader); got != tc.status {
				t.Errorf("%s = %q, want %s", micro.ErrorCodeHeader, got, tc.status)
			}
			var body httpjson.ErrorBody
			if err := json.Unmarshal(reply.Data, &body); err != nil {
				t.Fatalf("error body %q: %v", reply.Data, err)
			}
			if body.Error.Code != tc.code || body.Error.RequestID != "err-"+tc.code || reply.Header.Get(micro.ErrorHeader) != body.Error.Message {
				t.Errorf("body %+v, headers %v", body, reply.Header)
			}
			if tc.message != "" && body.Error.Message != tc.message {
				t.Errorf("message %q, want %q", body.Error.Message, tc.message)
			}
			if reply.Header.Get(natsrpc.HeaderRequestID) != "err-"+tc.code {
				t.Errorf("reply lacks the request id header: %v", reply.Header)
			}
			if strings.Contains(string(reply.Data), secret) {
				t.Errorf("reply leaks a secret: %s", reply.Data)
			}
		})
	}
	// The client helper surfaces the same error.
	err := natsrpc.Request(context.Background(), nc, "xnum.test.echo", query{City: "throttle"}, nil)
	var re *natsrpc.RemoteError
	if !errors.As(err, &re) || re.Status != 429 || re.Body.Error.Code != "Throttled" {
		t.Errorf("Request = %v", err)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("logs leak a secret:\n%s", logs.String())
	}
}

func TestBadService(t *testing.T) {
	ns := embednats.RunTest(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := natsrpc.Start(nc, trigger.Service{Name: "bad name!", Version: "1.0.0"}); err == nil {
		t.Fatal("Start accepted an invalid service name")
	}
}
