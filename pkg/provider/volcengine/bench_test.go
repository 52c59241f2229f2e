package volcengine_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/volcengine/volc-sdk-golang/base"

	"github.com/xnum-dev/xnum/pkg/provider"
	emu "github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
)

// BenchmarkSign is Volcengine's HMAC-SHA256 request signature by the SDK's
// signer (volc-sdk-golang/base) on a NumberPoolList request as the VMS
// client sends it: body hash, canonical request, derived key, signature.
func BenchmarkSign(b *testing.B) {
	body := []byte(`{"Limit":10,"Offset":0}`)
	req, err := http.NewRequest(http.MethodPost, "https://open.volcengineapi.com/?Action=NumberPoolList&Version=2022-01-01", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	creds := base.Credentials{AccessKeyID: emu.DefaultAccessKeyID, SecretAccessKey: emu.DefaultAccessKeySecret, Service: "vms", Region: "cn-beijing"}
	b.ReportAllocs()
	for b.Loop() {
		req.Body = io.NopCloser(bytes.NewReader(body))
		if creds.Sign(req).Header.Get("Authorization") == "" {
			b.Fatal("no Authorization")
		}
	}
}

// BenchmarkListPools is the bare provider call the pools function wraps:
// NumberPoolList through the client and the SDK against the emulator over
// loopback HTTP.
func BenchmarkListPools(b *testing.B) {
	srv := emulatortest.NewServer(b)
	c := srv.Volcengine(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ListPools(ctx, provider.PoolQuery{Limit: 10}); err != nil {
			b.Fatal(err)
		}
	}
}
