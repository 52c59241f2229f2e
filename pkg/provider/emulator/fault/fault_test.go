package fault

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec   string
		action string
		want   Fault
		bad    bool
	}{
		{spec: "BuySecretNo:qps=5", action: "BuySecretNo", want: Fault{QPS: 5}},
		{spec: "BuySecretNo:error=isv.SYSTEM_ERROR,rate=0.1", action: "BuySecretNo", want: Fault{ErrorCode: "isv.SYSTEM_ERROR", ErrorRate: 0.1}},
		{spec: "NumberPoolList:cut=0.05,latency=20ms,burst=2,qps=1", action: "NumberPoolList", want: Fault{CutRate: 0.05, Latency: 20 * time.Millisecond, Burst: 2, QPS: 1}},
		{spec: "BuySecretNo:error-after=InternalError", action: "BuySecretNo", want: Fault{ErrorAfterCode: "InternalError"}},
		{spec: "QuerySecretNoRemain:garble=0.5", action: "QuerySecretNoRemain", want: Fault{GarbleRate: 0.5}},
		{spec: "BuySecretNo:error=Throttling,error-after=InternalError", bad: true},
		{spec: "BuySecretNo:garble=2", bad: true},
		{spec: "BuySecretNo", bad: true},
		{spec: ":qps=1", bad: true},
		{spec: "BuySecretNo:", bad: true},
		{spec: "BuySecretNo:qps", bad: true},
		{spec: "BuySecretNo:qps=0", bad: true},
		{spec: "BuySecretNo:qps=x", bad: true},
		{spec: "BuySecretNo:rate=1.5", bad: true},
		{spec: "BuySecretNo:cut=-1", bad: true},
		{spec: "BuySecretNo:latency=fast", bad: true},
		{spec: "BuySecretNo:colour=red", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			action, f, err := Parse(tt.spec)
			if tt.bad {
				if err == nil {
					t.Fatalf("Parse(%q) = %q, %+v; want an error", tt.spec, action, f)
				}
				return
			}
			if err != nil || action != tt.action || f != tt.want {
				t.Fatalf("Parse(%q) = %q, %+v, %v; want %q, %+v", tt.spec, action, f, err, tt.action, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	s := NewSet(1)
	if d := s.Decide("BuySecretNo"); d != (Decision{}) {
		t.Fatalf("no fault: got %+v", d)
	}

	s.Set("BuySecretNo", Fault{ErrorCode: "isv.SYSTEM_ERROR"})
	if d := s.Decide("BuySecretNo"); d.ErrorCode != "isv.SYSTEM_ERROR" {
		t.Fatalf("error at rate 0 means always: got %+v", d)
	}
	if d := s.Decide("QuerySecretNoRemain"); d != (Decision{}) {
		t.Fatalf("another action is untouched: got %+v", d)
	}

	s.Set("BuySecretNo", Fault{ErrorAfterCode: "InternalError"})
	if d := s.Decide("BuySecretNo"); d.ErrorAfter != "InternalError" || d.ErrorCode != "" {
		t.Fatalf("error-after: got %+v", d)
	}
	s.Set("BuySecretNo", Fault{GarbleRate: 1})
	if d := s.Decide("BuySecretNo"); !d.Garble {
		t.Fatalf("garble at rate 1: got %+v", d)
	}

	s.Set("BuySecretNo", Fault{ErrorCode: "isv.SYSTEM_ERROR", ErrorRate: 0.25, Latency: time.Millisecond})
	errs := 0
	for range 4000 {
		d := s.Decide("BuySecretNo")
		if d.Delay != time.Millisecond {
			t.Fatalf("latency not carried: %+v", d)
		}
		if d.ErrorCode != "" {
			errs++
		}
	}
	if errs < 800 || errs > 1200 {
		t.Fatalf("rate 0.25 of 4000 calls gave %d errors", errs)
	}

	s.Set("BuySecretNo", Fault{CutRate: 1})
	if d := s.Decide("BuySecretNo"); !d.Cut {
		t.Fatalf("cut rate 1: got %+v", d)
	}

	s.Set("BuySecretNo", Fault{})
	if d := s.Decide("BuySecretNo"); d != (Decision{}) {
		t.Fatalf("cleared: got %+v", d)
	}
}

func TestDecideQPS(t *testing.T) {
	s := NewSet(1)
	s.Set("BuySecretNo", Fault{QPS: 3})
	allowed := 0
	for range 10 {
		if !s.Decide("BuySecretNo").Throttled {
			allowed++
		}
	}
	// A burst of 10 calls in far less than a second: the bucket holds 3.
	if allowed != 3 {
		t.Fatalf("qps 3: %d of 10 immediate calls allowed, want 3", allowed)
	}
}

func TestCut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { Cut(w) }))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a cut connection gave status %d, want a transport error", resp.StatusCode)
	}
}
