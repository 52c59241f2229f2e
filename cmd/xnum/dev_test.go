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
)

// xnum dev prints what it started and examples; the GET examples answer 200
// and the POST example is accepted.
func TestDevCommandExamplesWork(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--http", "127.0.0.1:0", "--nats", "127.0.0.1:0", "--log-level", "warn"}, pw, io.Discard)
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
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		line := lines.Text()
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
		for try := 0; try < 100; try++ { // the order example completes shortly
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
			if code == 200 && !strings.Contains(string(b), `"accepted"`) && !strings.Contains(string(b), `"processing"`) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if code != 200 {
			t.Errorf("GET %s: %d", u, code)
		}
	}
}
