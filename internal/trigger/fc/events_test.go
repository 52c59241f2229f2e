package fc_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/fc"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// orderID reads the orderId of a message body, which must be JSON.
func orderID(t *testing.T, body []byte) string {
	t.Helper()
	var o struct {
		OrderID string `json:"orderId"`
	}
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("body %q is not an order: %v", body, err)
	}
	return o.OrderID
}

func TestMessagesFromTestdata(t *testing.T) {
	type want struct {
		source, id, order string
		attrs             map[string]string
	}
	for _, tc := range []struct {
		file string
		want []want
	}{
		{"mns-event.json", []want{{trigger.SourceMNS, "C6DB60D1574661357FA227277445****", "ord-mns-1", map[string]string{"requestId": "606EA3074344430D4C81****", "eventSource": "acs:mns"}}}},
		{"mns-stream.json", []want{
			{trigger.SourceMNS, "C6DB60D1574661357FA227277445****", "ord-mns-2", map[string]string{"eventSource": "MNS-Function-mnstrigger"}},
			{trigger.SourceMNS, "D6DB60D1574661357FA227277445****", "ord-mns-3", nil},
		}},
		{"rocketmq-stream.json", []want{
			{trigger.SourceRocketMQ, "AC14C305069E1B28CDFA3181CDA2****", "ord-rmq-1", map[string]string{"topic": "TopicName", "KEYS": "systemProperties.KEYS"}},
			{trigger.SourceRocketMQ, "94ebc15f-f0db-4bbe-acce-56fb72fc****", "ord-rmq-2", map[string]string{"RECONSUME_TIMES": "2", "user.source": "crm"}},
		}},
		{"kafka-stream.json", []want{
			{trigger.SourceKafka, "mytopic/7/25", "ord-kafka-1", map[string]string{"key": "keytest", "partition": "7", "offset": "25"}},
			{trigger.SourceKafka, "mytopic/7/26", "ord-kafka-2", nil},
		}},
		{"xnum-cloudevent.json", []want{{trigger.SourceDirect, "", "ord-ce-1", nil}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			payload := readTestdata(t, tc.file)
			msgs := fc.Messages(payload)
			if len(msgs) != len(tc.want) {
				t.Fatalf("got %d messages, want %d: %+v", len(msgs), len(tc.want), msgs)
			}
			for i, w := range tc.want {
				m := msgs[i]
				if m.Source != w.source || m.ID != w.id {
					t.Errorf("message %d: source %q id %q, want %q %q", i, m.Source, m.ID, w.source, w.id)
				}
				if w.source == trigger.SourceDirect {
					if string(m.Body) != string(payload) {
						t.Errorf("direct message body changed")
					}
					continue
				}
				if got := orderID(t, m.Body); got != w.order {
					t.Errorf("message %d: order %q, want %q", i, got, w.order)
				}
				for k, v := range w.attrs {
					if m.Attributes[k] != v {
						t.Errorf("message %d: attribute %s = %q, want %q", i, k, m.Attributes[k], v)
					}
				}
			}
		})
	}
}

func TestMessagesTimerAndDirect(t *testing.T) {
	timer := fc.Messages(readTestdata(t, "timer.json"))
	if len(timer) != 1 || timer[0].Source != trigger.SourceTimer || string(timer[0].Body) != "drain" ||
		timer[0].Attributes["triggerName"] != "timer-trigger" || timer[0].ID != "timer-trigger@2023-12-26T07:49:00Z" {
		t.Errorf("timer = %+v", timer)
	}
	for _, payload := range []string{
		`{"orderId":"o1","poolKey":"FC1","city":"杭州","specId":1,"quantity":1}`,
		`[{"orderId":"o1"},{"orderId":"o2"}]`,
		`[]`,
		``,
		`not json`,
		`{"triggerTime":"t","triggerName":"n","payload":"p","orderId":"x"}`,
		`{"specversion":"1.0","type":"mns:Queue:SendMessage","data":{"messageId":"m"}}`,
		`[{"specversion":"1.0","type":"mq:Topic:SendMessage","data":{"body":"x"}},{"orderId":"o2"}]`,
		`{"specversion":"1.0","type":"com.example.other","data":{"body":"x"}}`,
	} {
		msgs := fc.Messages([]byte(payload))
		if len(msgs) != 1 || msgs[0].Source != trigger.SourceDirect || string(msgs[0].Body) != payload {
			t.Errorf("Messages(%q) = %+v, want one direct message with the payload", payload, msgs)
		}
	}
}

func FuzzMessages(f *testing.F) {
	for _, name := range []string{"mns-event.json", "mns-stream.json", "rocketmq-stream.json", "kafka-stream.json", "timer.json", "xnum-cloudevent.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		msgs := fc.Messages(payload)
		if len(msgs) == 0 {
			t.Fatal("no message")
		}
		for _, m := range msgs {
			if m.Source == "" {
				t.Fatal("message without source")
			}
		}
	})
}
