package fc

import (
	"bytes"
	"net/http/httptest"
	"runtime"
	"testing"
)

// An event is read into one buffer of its size: four concurrent 32 MB
// posts must cost about 128 MB, not the several times more io.ReadAll's
// growing copies take.
func TestReadEventReadsIntoOneBuffer(t *testing.T) {
	const size = 8 << 20
	r := httptest.NewRequest("POST", "/invoke", bytes.NewReader(bytes.Repeat([]byte("x"), size)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readEvent(httptest.NewRecorder(), r, DefaultMaxEventBytes)
	runtime.ReadMemStats(&after)
	if err != nil || len(got) != size {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size+size/8 {
		t.Errorf("reading %d bytes allocated %d", size, alloc)
	}
}
