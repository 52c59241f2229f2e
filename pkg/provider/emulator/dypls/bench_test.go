package dypls_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
)

// benchParams are the parameters of a signed QuerySecretNoRemain as the SDK
// sends them, without Signature.
func benchParams(nonce int) url.Values {
	return url.Values{
		"Action": {"QuerySecretNoRemain"}, "Version": {dypls.Version}, "Format": {"JSON"},
		"RegionId": {"cn-hangzhou"}, "AccessKeyId": {dypls.DefaultAccessKeyID},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"}, "SignatureType": {""},
		"SignatureNonce": {strconv.Itoa(nonce)}, "Timestamp": {time.Now().UTC().Format("2006-01-02T15:04:05Z")},
		"SpecId": {"2"}, "City": {"杭州"}, "SecretNo": {"130"},
	}
}

// BenchmarkSign is Dyplsapi's RPC v1 signature (HMAC-SHA1 over the
// canonical query) as the emulator computes it to check every request.
func BenchmarkSign(b *testing.B) {
	p := benchParams(1)
	b.ReportAllocs()
	for b.Loop() {
		if dypls.Sign(http.MethodPost, p, dypls.DefaultAccessKeySecret) == "" {
			b.Fatal("empty signature")
		}
	}
}

// BenchmarkQuerySecretNoRemain is the emulator's share of every remain and
// every order: check the signature and nonce, count the stock. The stock
// sizes are the default seed and what a pipeline run puts on sale; the
// emulator scans its whole stock on every query and buy.
func BenchmarkQuerySecretNoRemain(b *testing.B) {
	for _, extra := range []int{0, 5000} {
		b.Run(fmt.Sprintf("stock=default+%d", extra), func(b *testing.B) {
			var nums []dypls.Number
			for i := range extra {
				nums = append(nums, dypls.Number{SecretNo: fmt.Sprintf("1390%07d", i), SpecID: dypls.SpecCarrier,
					City: "基准" + string(rune('甲'+i%100)), Province: "基准", Vendor: dypls.VendorMobile})
			}
			s, err := dypls.New(dypls.WithNumbers(append(dypls.DefaultNumbers(), nums...)...))
			if err != nil {
				b.Fatal(err)
			}
			nonce := 0
			b.ReportAllocs()
			for b.Loop() {
				nonce++
				p := benchParams(nonce)
				p.Set("Signature", dypls.Sign(http.MethodPost, p, dypls.DefaultAccessKeySecret))
				r := httptest.NewRequest(http.MethodPost, "/", nil)
				r.URL.RawQuery = p.Encode()
				w := httptest.NewRecorder()
				s.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
