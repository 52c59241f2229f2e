package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/config"
)

// xnum dev prints what it started and examples; the GET examples answer 200
// and the POST example is accepted and bought — with the worker consuming
// the queue, and with --fc, as a function the intake wakes up.
func TestDevCommandExamplesWork(t *testing.T) {
	for _, shape := range [][]string{nil, {"--fc"}} {
		t.Run(strings.Join(append([]string{"dev"}, shape...), " "), func(t *testing.T) { testDevExamples(t, shape) })
	}
}

func testDevExamples(t *testing.T, flags []string) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		args := append([]string{"dev", "--http", "127.0.0.1:0", "--nats", "127.0.0.1:0", "--log-level", "warn"}, flags...)
		done <- run(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("xnum dev after interrupt: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("xnum dev did not stop within 15s")
		}
	}()

	getRe := regexp.MustCompile(`^\s+curl '(http://[^']+)'$`)
	postRe := regexp.MustCompile(`^\s+curl -i -X POST (\S+) -H '([^:]+): ([^']+)' -d '([^']+)'$`)
	var gets []string
	var post []string
	worker := false
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		line := lines.Text()
		worker = worker || strings.HasPrefix(strings.TrimSpace(line), "worker ")
		if m := getRe.FindStringSubmatch(line); m != nil {
			gets = append(gets, m[1])
		}
		if m := postRe.FindStringSubmatch(line); m != nil {
			post = m[1:]
		}
		if strings.Contains(line, "orders list") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if len(gets) < 4 || post == nil {
		t.Fatalf("banner examples: %d GETs, POST %v", len(gets), post)
	}
	if worker != (len(flags) > 0) {
		t.Fatalf("the banner names a worker function: %v, with flags %v", worker, flags)
	}

	req, _ := http.NewRequest("POST", post[0], strings.NewReader(post[3]))
	req.Header.Set(post[1], post[2])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST example: %d", resp.StatusCode)
	}
	for _, u := range gets {
		var code int
		var body string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			if code == 200 && !strings.Contains(body, `"accepted"`) && !strings.Contains(body, `"processing"`) { // the order example completes shortly
				break
			}
		}
		if code != 200 {
			t.Errorf("GET %s: %d", u, code)
		}
		if strings.Contains(u, "/orders/") && !strings.Contains(body, `"completed"`) {
			t.Errorf("GET %s: %s, want the order completed", u, body)
		}
	}
}

// xnum refuses to start when DEBUG would make the Alibaba SDK print its
// signed requests.
func TestSDKDebugRefused(t *testing.T) {
	t.Setenv(config.Debug, "sdk")
	t.Setenv(config.AllowSDKDebug, "")
	for _, args := range [][]string{{"dev", "--http", "127.0.0.1:0"}, {"orders", "list"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), config.Debug) || !strings.Contains(err.Error(), config.AllowSDKDebug) {
			t.Errorf("xnum %s with DEBUG=sdk: %v, want a refusal", args[0], err)
		}
	}
}
