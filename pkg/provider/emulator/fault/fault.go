// Package fault decides, per call of an emulated cloud action, which
// injected fault that call meets: added latency, an error code at a rate
// (answered instead of the work, or after it was done), a QPS limit, the
// work done and the connection cut before the answer, or the work done and
// an answer that is not the cloud's (a proxy's page).
//
// The cloud emulators ask a Set before each call and render what it decides in
// their own wire format; this package knows nothing of either cloud.
package fault

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Fault is what to do to the calls of one action. The zero Fault does nothing.
type Fault struct {
	// Latency is added before the call is answered (or cut).
	Latency time.Duration
	// ErrorCode is the cloud's code to answer with, instead of doing the work,
	// on a fraction ErrorRate of calls (all of them when ErrorRate is 0).
	ErrorCode string
	ErrorRate float64
	// QPS limits the calls per second; calls over it are answered with the
	// cloud's throttling code. Burst is the bucket size (default: QPS rounded
	// up, at least 1), as a cloud counts calls over a one-second window.
	QPS   float64
	Burst int
	// ErrorAfterCode is answered, on a fraction ErrorRate of calls (all of
	// them when ErrorRate is 0), after the work was done: a cloud that failed
	// on its way back, the case that tells a refusal from an unknown outcome.
	// At most one of ErrorCode and ErrorAfterCode is set.
	ErrorAfterCode string
	// CutRate is the fraction of calls that do their work and then lose the
	// connection before any answer: the client cannot tell whether it happened.
	CutRate float64
	// GarbleRate is the fraction of calls that do their work and are then
	// answered 200 with a body that is not the cloud's (an HTML page, as a
	// proxy in between would send).
	GarbleRate float64
}

// Decision is what one call meets.
type Decision struct {
	Delay     time.Duration
	Throttled bool   // answer with the cloud's throttling code
	ErrorCode string // answer with this code, without doing the work
	// ErrorAfter: do the work, then answer with this code.
	ErrorAfter string
	Cut        bool // do the work, then cut the connection
	Garble     bool // do the work, then answer a body that is not the cloud's
}

// Set holds the faults of every action. It is safe for concurrent use, and
// faults may be changed while calls are served.
type Set struct {
	mu       sync.Mutex
	faults   map[string]Fault
	limiters map[string]*rate.Limiter
	rng      *rand.Rand
}

// NewSet returns a Set with no faults. seed makes the rates reproducible.
func NewSet(seed uint64) *Set {
	return &Set{
		faults:   map[string]Fault{},
		limiters: map[string]*rate.Limiter{},
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Set replaces the fault of action; the zero Fault clears it.
func (s *Set) Set(action string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.limiters, action)
	if f == (Fault{}) {
		delete(s.faults, action)
		return
	}
	s.faults[action] = f
	if f.QPS > 0 {
		burst := f.Burst
		if burst <= 0 {
			burst = max(1, int(f.QPS+0.999))
		}
		s.limiters[action] = rate.NewLimiter(rate.Limit(f.QPS), burst)
	}
}

// Get returns the fault of action.
func (s *Set) Get(action string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults[action]
}

// Decide returns what the next call of action meets. The throttle is checked
// first, as a cloud's gateway refuses a call before its service sees it.
func (s *Set) Decide(action string) Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.faults[action]
	if !ok {
		return Decision{}
	}
	d := Decision{Delay: f.Latency}
	if l := s.limiters[action]; l != nil && !l.Allow() {
		d.Throttled = true
		return d
	}
	if f.ErrorCode != "" && (f.ErrorRate <= 0 || s.rng.Float64() < f.ErrorRate) {
		d.ErrorCode = f.ErrorCode
		return d
	}
	if f.ErrorAfterCode != "" && (f.ErrorRate <= 0 || s.rng.Float64() < f.ErrorRate) {
		d.ErrorAfter = f.ErrorAfterCode
		return d
	}
	if f.CutRate > 0 && s.rng.Float64() < f.CutRate {
		d.Cut = true
		return d
	}
	if f.GarbleRate > 0 && s.rng.Float64() < f.GarbleRate {
		d.Garble = true
	}
	return d
}

// GarbledBody is the answer of a garbled call: what a proxy or load balancer
// in front of the cloud sends when the cloud's answer did not reach it.
const GarbledBody = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"

// Garble answers w with GarbledBody and status 200, as a misbehaving proxy
// would.
func Garble(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, GarbledBody)
}

// Cut closes the connection under w without writing an answer, so the client
// sees its request sent and the connection lost. It panics with
// http.ErrAbortHandler when w cannot be hijacked, which net/http also turns
// into a dropped connection.
func Cut(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// Parse reads a fault from its flag form, "Action:key=value,key=value", with
// keys latency (a duration), error and error-after (a code), rate, qps,
// burst, cut and garble (fractions). Examples:
//
//	BuySecretNo:qps=5
//	BuySecretNo:error=isv.SYSTEM_ERROR,rate=0.1
//	BuySecretNo:error-after=InternalError
//	BuySecretNo:cut=0.05,latency=20ms
//	QuerySecretNoRemain:garble=0.5
func Parse(spec string) (action string, f Fault, err error) {
	action, opts, ok := strings.Cut(spec, ":")
	if !ok || action == "" || opts == "" {
		return "", Fault{}, fmt.Errorf("fault %q: want Action:key=value[,key=value]", spec)
	}
	for kv := range strings.SplitSeq(opts, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", Fault{}, fmt.Errorf("fault %q: %q is not key=value", spec, kv)
		}
		switch k {
		case "latency":
			f.Latency, err = time.ParseDuration(v)
		case "error":
			f.ErrorCode = v
		case "error-after":
			f.ErrorAfterCode = v
		case "rate":
			f.ErrorRate, err = parseFraction(v)
		case "cut":
			f.CutRate, err = parseFraction(v)
		case "garble":
			f.GarbleRate, err = parseFraction(v)
		case "qps":
			f.QPS, err = strconv.ParseFloat(v, 64)
			if err == nil && f.QPS <= 0 {
				err = fmt.Errorf("qps must be positive")
			}
		case "burst":
			f.Burst, err = strconv.Atoi(v)
		default:
			err = fmt.Errorf("unknown key (want latency, error, error-after, rate, qps, burst, cut or garble)")
		}
		if err != nil {
			return "", Fault{}, fmt.Errorf("fault %q: %s: %w", spec, k, err)
		}
	}
	if f.ErrorCode != "" && f.ErrorAfterCode != "" {
		return "", Fault{}, fmt.Errorf("fault %q: error and error-after exclude each other", spec)
	}
	return action, f, nil
}

func parseFraction(v string) (float64, error) {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, err
	}
	if x < 0 || x > 1 {
		return 0, fmt.Errorf("%v is not a fraction between 0 and 1", x)
	}
	return x, nil
}
