package fc_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/internal/httpjson"
	"github.com/xnum-dev/xnum/internal/trigger"
	"github.com/xnum-dev/xnum/internal/trigger/fc"
)

// postUnsent posts to url a body that announces n bytes and sends none
// until the answer has come: an answer proves the server did not wait for
// the body (a server that waits answers nothing, and the client gives up).
func postUnsent(t *testing.T, url string, n int64) (*http.Response, httpjson.ErrorBody) {
	t.Helper()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("POST", url, pr)
	req.ContentLength = n
	req.Header.Set("x-fc-request-id", "fc-big")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer to an unsent body: %v", err)
	}
	defer resp.Body.Close()
	var eb httpjson.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp, eb
}

// A function without an event handler refuses an event before reading it.
func TestEventRefusedUnreadWithoutHandler(t *testing.T) {
	h := start(t, func(r *recorder) trigger.Function {
		f := r.function()
		f.Events = nil
		return f
	})
	resp, eb := postUnsent(t, h.url+"/invoke", 30<<20)
	if resp.StatusCode != 404 || resp.Header.Get(fc.HeaderStatus) != "404" || eb.Error.Code != "InvalidParameter" || eb.Error.Message != "function test takes no events; call its HTTP routes" {
		t.Fatalf("status %d x-fc-status %q body %+v", resp.StatusCode, resp.Header.Get(fc.HeaderStatus), eb)
	}
}

// An event larger than the limit is refused before it is read.
func TestEventOverTheLimitRefusedUnread(t *testing.T) {
	h := start(t, (*recorder).function, fc.WithMaxEventBytes(1<<10))
	resp, eb := postUnsent(t, h.url+"/invoke", 1<<10+1)
	if resp.StatusCode != 404 || resp.Header.Get(fc.HeaderStatus) != "404" || eb.Error.Code != httpjson.CodePayloadTooLarge {
		t.Fatalf("status %d body %+v", resp.StatusCode, eb)
	}
	// At the limit it is read and handled.
	body := []byte(`{"orderId":"o-1","pad":"` + strings.Repeat("x", 1<<10-26) + `"}`)
	if len(body) != 1<<10 {
		t.Fatalf("test body of %d bytes", len(body))
	}
	if resp, b := do(t, "POST", h.url+"/invoke", body, nil); resp.StatusCode != 200 {
		t.Fatalf("an event at the limit: %d %s", resp.StatusCode, b)
	}
}

// A body trickled byte by byte is cut at the read timeout instead of
// holding a handler for as long as the sender likes.
func TestTrickledBodyIsCut(t *testing.T) {
	h := start(t, func(*recorder) trigger.Function {
		mux := httpjson.NewMux()
		mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
			_, err := io.Copy(io.Discard, r.Body)
			httpjson.WriteError(w, r, fmt.Errorf("read: %w", err))
		})
		return trigger.Function{Name: "slow", HTTP: mux}
	}, fc.WithContract(false), fc.WithReadTimeout(300*time.Millisecond))
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 400 // at one byte per 50 ms: 20 s
	fmt.Fprintf(conn, "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, _ = bufio.NewReader(conn).ReadString(0) // until the server answers or closes
	}()
	sent := 0
	for ; sent < size; sent++ {
		select {
		case <-ended:
			if sent >= size/2 {
				t.Fatalf("the server held the trickle for %d of %d bytes", sent, size)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := conn.Write([]byte("x")); err != nil {
			return // the server closed the connection: cut
		}
	}
	t.Fatalf("the server read all %d trickled bytes", size)
}

// The read timeout bounds the arrival of a request, not the handler: a
// handler still working after it keeps a live context, with a body or
// without.
func TestLongHandlerKeepsItsContext(t *testing.T) {
	const timeout = 100 * time.Millisecond
	h := start(t, func(*recorder) trigger.Function {
		mux := httpjson.NewMux()
		mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
				httpjson.Write(w, http.StatusOK, map[string]string{"ctx": "cancelled"})
			case <-time.After(5 * timeout):
				httpjson.Write(w, http.StatusOK, map[string]string{"ctx": "alive"})
			}
		})
		return trigger.Function{Name: "long", HTTP: mux}
	}, fc.WithContract(false), fc.WithReadTimeout(timeout))
	for _, method := range []string{"GET", "POST"} {
		resp, body := do(t, method, h.url+"/work", []byte(`{"a":1}`), nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "alive") {
			t.Errorf("%s: %d %s", method, resp.StatusCode, body)
		}
	}
}
