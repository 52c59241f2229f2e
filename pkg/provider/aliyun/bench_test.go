package aliyun_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/dyplsapi"

	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
)

// BenchmarkSDKSign is the SDK's RPC v1 signer on a BuySecretNo request, as
// every call runs it: common parameters, nonce, string to sign, HMAC-SHA1.
func BenchmarkSDKSign(b *testing.B) {
	req := dyplsapi.CreateBuySecretNoRequest()
	req.PoolKey = "FC100000000000001"
	req.SpecId = requests.NewInteger(2)
	req.City = "杭州"
	req.SecretNo = "130"
	if err := requests.InitParams(req); err != nil {
		b.Fatal(err)
	}
	creds := credentials.NewStaticAKCredentialsProvider(emulator.DefaultAccessKeyID, emulator.DefaultAccessKeySecret)
	b.ReportAllocs()
	for b.Loop() {
		if err := auth.Sign(req, nil, "cn-hangzhou", creds); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRemain is the bare provider call the remain function wraps:
// QuerySecretNoRemain through the client and the SDK against the emulator
// over loopback HTTP, one call at a time and 16 at once (the concurrency of
// go run ./bench's remain figure).
func BenchmarkRemain(b *testing.B) {
	srv := emulatortest.NewServer(b)
	c := srv.Aliyun(b)
	b.Cleanup(c.CloseIdleConnections)
	q := provider.RemainQuery{City: "杭州", SpecID: provider.SpecCarrier}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Remain(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Remain(ctx, q); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
