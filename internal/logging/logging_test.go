package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/logging"
	"github.com/xnum-dev/xnum/internal/traceparent"
	"github.com/xnum-dev/xnum/pkg/provider"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRequestIDFromContext(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Function: "remain"})
	ctx := logging.WithRequestID(context.Background(), "req-1")

	log.InfoContext(ctx, "plain", "k", 1)
	log.WithGroup("g").With("a", 2).InfoContext(ctx, "grouped", "b", 3)
	log.InfoContext(context.Background(), "no id")
	log.InfoContext(ctx, "explicit", logging.RequestIDKey, "other")

	got := lines(t, &buf)
	if len(got) != 4 {
		t.Fatalf("got %d lines, want 4", len(got))
	}
	if got[0][logging.RequestIDKey] != "req-1" || got[0][logging.FunctionKey] != "remain" {
		t.Errorf("plain line = %v, want requestId req-1 and function remain", got[0])
	}
	if got[1][logging.RequestIDKey] != "req-1" {
		t.Errorf("grouped line = %v, want top-level requestId", got[1])
	}
	g, _ := got[1]["g"].(map[string]any)
	if g["a"] != float64(2) || g["b"] != float64(3) {
		t.Errorf("grouped line lost its group: %v", got[1])
	}
	if _, ok := got[2][logging.RequestIDKey]; ok {
		t.Errorf("line without id got one: %v", got[2])
	}
	if got[3][logging.RequestIDKey] != "other" {
		t.Errorf("explicit requestId was replaced: %v", got[3])
	}
	if logging.RequestID(context.Background()) != "" {
		t.Error("empty context has a request id")
	}
}

func TestFunctionFromContext(t *testing.T) {
	var buf bytes.Buffer
	plain := logging.New(&buf, logging.Options{})
	named := logging.New(&buf, logging.Options{Function: "pools"})
	ctx := logging.WithFunction(logging.WithRequestID(context.Background(), "r"), "remain")
	plain.InfoContext(ctx, "a")
	plain.WithGroup("g").InfoContext(ctx, "b", "k", 1)
	named.InfoContext(ctx, "c")
	got := lines(t, &buf)
	if got[0][logging.FunctionKey] != "remain" || got[1][logging.FunctionKey] != "remain" || got[1][logging.RequestIDKey] != "r" {
		t.Errorf("function from context: %v %v", got[0], got[1])
	}
	if got[2][logging.FunctionKey] != "pools" || strings.Count(buf.String(), `"function"`) != 3 {
		t.Errorf("the logger's own function name must win, once: %v\n%s", got[2], buf.String())
	}
	if logging.Function(context.Background()) != "" {
		t.Error("empty context has a function")
	}
}

func TestTraceFromContext(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})
	tc, err := traceparent.Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err != nil {
		t.Fatal(err)
	}
	ctx := traceparent.With(logging.WithRequestID(context.Background(), "r"), tc)
	log.InfoContext(ctx, "a")
	log.WithGroup("g").InfoContext(ctx, "b", "k", 1)
	log.InfoContext(context.Background(), "c")
	got := lines(t, &buf)
	for _, l := range got[:2] {
		if l[logging.TraceIDKey] != "4bf92f3577b34da6a3ce929d0e0e4736" || l[logging.SpanIDKey] != "00f067aa0ba902b7" || l[logging.RequestIDKey] != "r" {
			t.Errorf("line %v: want the trace id, span id and request id at the top level", l)
		}
	}
	if _, ok := got[2][logging.TraceIDKey]; ok {
		t.Errorf("a line without a trace got one: %v", got[2])
	}
}

func TestRedact(t *testing.T) {
	const secret = "S3cr3tValue"
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})
	h := http.Header{}
	h.Set("X-Fc-Access-Key-Secret", secret)
	h.Set("X-Fc-Security-Token", secret)
	h.Set("Authorization", "HMAC-SHA256 Credential=AK/20240101/cn-beijing/vms/request, Signature="+secret)
	h.Set("Accept", "application/json")

	log.Info("keys",
		"accessKeySecret", secret,
		"x-fc-security-token", secret,
		"password", secret,
		"Authorization", secret,
		slog.Group("token", "inner", secret),
		"headers", h,
		"err", errors.New(`Get "https://dyplsapi.aliyuncs.com/?AccessKeyId=AK&Signature=`+secret+`&SecurityToken=`+secret+`": timeout`),
		"sts", "server string to sign is:GET&%2F&AccessKeyId%3DAK%26SecurityToken%3D"+secret+"%26Version%3D2017",
		"creds", provider.Credentials{AccessKeyID: "AK", AccessKeySecret: secret, SecurityToken: secret},
	)
	log.Info("message with Signature=" + secret)
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("a secret reached the log:\n%s", out)
	}
	for _, want := range []string{`"Accept":["application/json"]`, `AccessKeyId=AK`, `"accessKeyId":"AK"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lost a harmless value %s:\n%s", want, out)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want slog.Level
		bad  bool
	}{
		{"", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{"WARN", slog.LevelWarn, false},
		{"warning", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"verbose", 0, true},
	} {
		got, err := logging.ParseLevel(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseLevel(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// Each shape a secret takes inside a string is redacted, whatever the
// attribute is called, and what names the secret stays readable.
func TestScrubShapes(t *testing.T) {
	const secret = "S3cr3t+Val/ue"
	for _, tc := range []struct {
		name, in, keep string
	}{
		{"query pair", "GET /?AccessKeyId=AK&Signature=" + secret + "&x=1", "AccessKeyId=AK"},
		{"encoded pair", "string to sign is:GET&%2F&AccessKeyId%3DAK%26SecurityToken%3D" + url.QueryEscape(secret) + "%26Version%3D2017", "Version%3D2017"},
		{"double-encoded pair", "GET%26%252F%26SecurityToken%253D" + url.QueryEscape(url.QueryEscape(secret)) + "%2526Version%253D2017", "Version%253D2017"},
		{"JSON", `{"AccessKeyId":"AK","SecurityToken":"` + secret + `","n":1}`, `"AccessKeyId":"AK"`},
		{"JSON with spaces", `{"password" : "` + secret + `"}`, `"password" : "`},
		{"quoted JSON", `body "{\"accessKeySecret\":\"` + secret + `\",\"region\":\"cn\"}"`, `\"region\":\"cn\"`},
		{"header line", "X-Fc-Security-Token: " + secret + "\nAccept: */*", "Accept: */*"},
		{"authorization header", "Authorization: HMAC-SHA256 Credential=AK/20240101, Signature=" + secret, "Authorization:"},
		{"printed header map", "map[Accept:[json] X-Fc-Access-Key-Secret:[" + secret + "]]", "Accept:[json]"},
		{"user info", "dial nats://xnum:" + secret + "@10.0.0.5:4222: refused", "nats://xnum:"},
		{"user info in wss", "wss://u:" + secret + "@h/ws", "@h/ws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logging.New(&buf, logging.Options{}).Info("line", "text", tc.in, "err", errors.New(tc.in))
			logging.New(&buf, logging.Options{}).Info(tc.in)
			out := buf.String()
			for _, form := range []string{secret, url.QueryEscape(secret), url.QueryEscape(url.QueryEscape(secret)), "S3cr3t"} {
				if strings.Contains(out, form) {
					t.Fatalf("%q reached the log:\n%s", form, out)
				}
			}
			if got := logging.Scrub(tc.in); !strings.Contains(got, tc.keep) || !strings.Contains(got, logging.Redacted) {
				t.Errorf("Scrub(%q) = %q, want %q kept and the secret redacted", tc.in, got, tc.keep)
			}
		})
	}
}

func TestTimeInUTC(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("CST", 8*3600) // as on a host set to Shanghai
	t.Cleanup(func() { time.Local = local })
	var buf bytes.Buffer
	logging.New(&buf, logging.Options{}).Info("x")
	got := lines(t, &buf)
	if len(got) != 1 || !strings.HasSuffix(got[0]["time"].(string), "Z") {
		t.Fatalf("time not in UTC: %v", got)
	}
}
