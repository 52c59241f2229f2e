package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xnum-dev/xnum/internal/gobuild"
)

// defaultBuild is how s.yaml builds a function when s.yaml cannot be read:
// a static, stripped binary without local paths.
var defaultBuild = gobuild.Spec{Env: []string{"CGO_ENABLED=0"}, Flags: []string{"-trimpath", "-ldflags=-s -w"}, From: "default"}

// fileSize is the size of the file at path.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// freePort asks the kernel for a port nobody listens on. Another process may
// take it before the function does; the start then fails loudly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is a function binary running under FC's custom runtime contract on a
// loopback port.
type proc struct {
	cmd    *exec.Cmd
	URL    string // http://127.0.0.1:port
	done   chan struct{}
	err    error
	stderr *tailBuffer
}

// start execs bin with env (and nothing else of the bench's environment, so
// a stray AWS_LAMBDA_RUNTIME_API or NATS_URL of the caller cannot change what
// is measured) and FC_SERVER_PORT set to a free port. It does not wait for
// the server.
func start(bin string, env []string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"FC_SERVER_PORT=" + strconv.Itoa(port)}, env...)
	p := &proc{cmd: cmd, URL: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{}), stderr: &tailBuffer{max: 4 << 10}}
	cmd.Stdout = nil // /dev/null: the JSON logs are written, as on FC, but not kept
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports the process's end, if it ended.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, fmt.Errorf("%s exited: %v: %s", filepath.Base(p.cmd.Path), p.err, strings.TrimSpace(p.stderr.String()))
	default:
		return false, nil
	}
}

// stop sends SIGTERM, as FC does, and kills the process if it has not ended
// within five seconds.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// usage is what a process used in all, as the kernel accounted it.
type usage struct {
	cpu    time.Duration // user and system, to the microsecond
	faults int64         // minor page faults: memory touched for the first time
}

// kill ends the process at once (SIGKILL: no drain, so nothing after this
// moment adds to what it used) and returns what it used.
func (p *proc) kill() (usage, error) {
	_ = p.cmd.Process.Kill()
	<-p.done
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return usage{}, errors.New("no rusage for the process")
	}
	return usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), faults: ru.Minflt}, nil
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func (p *proc) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// cpuTime is the CPU time the process has used so far: the run time of
// each of its threads from /proc/PID/task/*/schedstat, in nanoseconds (the
// user and system times of /proc/PID/stat count in 10 ms ticks, too coarse
// for a few seconds of load); 0 when it cannot be read.
func (p *proc) cpuTime() time.Duration {
	dir := fmt.Sprintf("/proc/%d/task", p.cmd.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}

// probe is one request that counts as a real answer when it gets the
// expected status.
type probe struct {
	Method, Path string
	Body         func() []byte // nil: no body; called per try, so each may differ
	Header       http.Header
	Status       int
}

// send makes the probe's request to base with client.
func (pr probe) send(ctx context.Context, client *http.Client, base string) (int, []byte, error) {
	var body io.Reader
	if pr.Body != nil {
		body = bytes.NewReader(pr.Body())
	}
	req, err := http.NewRequestWithContext(ctx, pr.Method, base+pr.Path, body)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range pr.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// waitReady sends pr to p until it answers: a refused connection means the
// server is not listening yet and is tried again after a short pause; any
// other failure, or a status other than pr.Status, ends the wait with an
// error.
func waitReady(ctx context.Context, p *proc, pr probe, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	defer client.CloseIdleConnections()
	for {
		status, body, err := pr.send(ctx, client, p.URL)
		if err == nil {
			if status != pr.Status {
				return fmt.Errorf("%s %s answered %d, want %d: %s", pr.Method, pr.Path, status, pr.Status, bytes.TrimSpace(body))
			}
			return nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%s %s: %w", pr.Method, pr.Path, err)
		}
		if ended, eerr := p.exited(); ended {
			return eerr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer within %v", timeout)
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
