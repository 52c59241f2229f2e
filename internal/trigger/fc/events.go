package fc

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/xnum-dev/xnum/internal/trigger"
)

// EventBridge event types of the sources FC triggers read, and where each
// keeps the message inside the CloudEvent's data. FC-created event streams
// name the source after the trigger ("MNS-Function-<trigger>",
// "RocketMQ-Function-<trigger>"), so the type, not the source, tells which
// queue a CloudEvent came from.
const (
	typeMNS      = "mns:Queue:SendMessage"
	typeRocketMQ = "mq:Topic:SendMessage"
	typeKafka    = "alikafka:Topic:Message"
)

type cloudEvent struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject"`
	Time        string          `json:"time"`
	Data        json.RawMessage `json:"data"`
}

type mnsData struct {
	RequestID   string          `json:"requestId"`
	MessageID   string          `json:"messageId"`
	MessageBody json.RawMessage `json:"messageBody"`
}

type rocketMQData struct {
	Topic            string            `json:"topic"`
	SystemProperties map[string]any    `json:"systemProperties"`
	UserProperties   map[string]string `json:"userProperties"`
	Body             json.RawMessage   `json:"body"`
}

type kafkaData struct {
	Topic     string          `json:"topic"`
	Partition *int64          `json:"partition"`
	Offset    *int64          `json:"offset"`
	Timestamp json.RawMessage `json:"timestamp"`
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
}

type timerEvent struct {
	TriggerTime string          `json:"triggerTime"`
	TriggerName string          `json:"triggerName"`
	Payload     json.RawMessage `json:"payload"`
}

// Messages unwraps the payload of an FC event invocation: one EventBridge
// CloudEvent from an MNS queue, RocketMQ or Kafka trigger, or a JSON array of
// them (event-streaming mode, batch push), becomes one message each with the
// queue's message as Body; an FC timer trigger's payload becomes one "timer"
// message; anything else (a bare order, our own xnum CloudEvent, an
// InvokeFunction payload) is one "direct" message with the payload as it
// came.
func Messages(payload []byte) []trigger.Message {
	trimmed := bytes.TrimSpace(payload)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		var raws []json.RawMessage
		if json.Unmarshal(trimmed, &raws) == nil && len(raws) > 0 {
			msgs := make([]trigger.Message, 0, len(raws))
			for _, raw := range raws {
				m, ok := fromCloudEvent(raw)
				if !ok {
					return []trigger.Message{direct(payload)}
				}
				msgs = append(msgs, m)
			}
			return msgs
		}
	case len(trimmed) > 0 && trimmed[0] == '{':
		if m, ok := fromCloudEvent(trimmed); ok {
			return []trigger.Message{m}
		}
		if m, ok := fromTimer(trimmed); ok {
			return []trigger.Message{m}
		}
	}
	return []trigger.Message{direct(payload)}
}

func direct(payload []byte) trigger.Message {
	return trigger.Message{Source: trigger.SourceDirect, Body: payload}
}

// fromCloudEvent recognises an EventBridge CloudEvent of a queue source by
// its specversion and type; others, including xnum's own CloudEvents, are
// not unwrapped.
func fromCloudEvent(raw []byte) (trigger.Message, bool) {
	var ev cloudEvent
	if json.Unmarshal(raw, &ev) != nil || ev.SpecVersion == "" || len(ev.Data) == 0 {
		return trigger.Message{}, false
	}
	attrs := map[string]string{"eventId": ev.ID, "eventSource": ev.Source, "eventType": ev.Type}
	if ev.Subject != "" {
		attrs["subject"] = ev.Subject
	}
	if ev.Time != "" {
		attrs["time"] = ev.Time
	}
	switch ev.Type {
	case typeMNS:
		var d mnsData
		if json.Unmarshal(ev.Data, &d) != nil || d.MessageBody == nil {
			return trigger.Message{}, false
		}
		if d.RequestID != "" {
			attrs["requestId"] = d.RequestID
		}
		return trigger.Message{ID: first(d.MessageID, ev.ID), Source: trigger.SourceMNS, Body: text(d.MessageBody), Attributes: attrs}, true
	case typeRocketMQ:
		var d rocketMQData
		if json.Unmarshal(ev.Data, &d) != nil || d.Body == nil {
			return trigger.Message{}, false
		}
		attrs["topic"] = d.Topic
		for k, v := range d.UserProperties {
			attrs["user."+k] = v
		}
		id := ev.ID
		if s, ok := d.SystemProperties["UNIQ_KEY"].(string); ok && s != "" {
			id = s
		}
		for _, k := range []string{"KEYS", "TAGS", "RECONSUME_TIMES", "INSTANCE_ID"} {
			if v, ok := d.SystemProperties[k]; ok {
				attrs[k] = scalar(v)
			}
		}
		return trigger.Message{ID: id, Source: trigger.SourceRocketMQ, Body: text(d.Body), Attributes: attrs}, true
	case typeKafka:
		var d kafkaData
		if json.Unmarshal(ev.Data, &d) != nil || d.Value == nil {
			return trigger.Message{}, false
		}
		attrs["topic"] = d.Topic
		id := ev.ID
		if d.Partition != nil && d.Offset != nil {
			p, o := strconv.FormatInt(*d.Partition, 10), strconv.FormatInt(*d.Offset, 10)
			attrs["partition"], attrs["offset"] = p, o
			id = d.Topic + "/" + p + "/" + o
		}
		if d.Key != nil && !bytes.Equal(d.Key, []byte("null")) {
			attrs["key"] = string(text(d.Key))
		}
		return trigger.Message{ID: id, Source: trigger.SourceKafka, Body: text(d.Value), Attributes: attrs}, true
	}
	return trigger.Message{}, false
}

// fromTimer recognises the FC timer trigger's event: triggerTime and
// triggerName, and nothing but those and the payload.
func fromTimer(raw []byte) (trigger.Message, bool) {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil {
		return trigger.Message{}, false
	}
	for k := range keys {
		if k != "triggerTime" && k != "triggerName" && k != "payload" {
			return trigger.Message{}, false
		}
	}
	var ev timerEvent
	if json.Unmarshal(raw, &ev) != nil || ev.TriggerTime == "" || ev.TriggerName == "" {
		return trigger.Message{}, false
	}
	var body []byte
	if ev.Payload != nil && !bytes.Equal(ev.Payload, []byte("null")) {
		body = text(ev.Payload)
	}
	return trigger.Message{
		ID:         ev.TriggerName + "@" + ev.TriggerTime,
		Source:     trigger.SourceTimer,
		Body:       body,
		Attributes: map[string]string{"triggerName": ev.TriggerName, "triggerTime": ev.TriggerTime},
	}, true
}

// text returns a JSON string's content, or any other JSON value as it is
// (Kafka's "Json" data format delivers value as an object, RabbitMQ bodies
// are objects).
func text(raw json.RawMessage) []byte {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return []byte(raw)
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
