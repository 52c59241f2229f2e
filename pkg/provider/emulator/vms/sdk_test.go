package vms

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdkvms "github.com/volcengine/volcengine-go-sdk/service/vms"
	"github.com/volcengine/volcengine-go-sdk/volcengine"
	"github.com/volcengine/volcengine-go-sdk/volcengine/credentials"
	"github.com/volcengine/volcengine-go-sdk/volcengine/session"
	"github.com/volcengine/volcengine-go-sdk/volcengine/volcengineerr"

	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// sdkClient is the SDK's own VMS client pointed at an emulator on loopback,
// as its users would point it: WithEndpoint(host).WithDisableSSL(true). The
// emulator keeps the real clock, since the SDK signs with it.
func sdkClient(t *testing.T, s *Server, ak, sk, token string) *sdkvms.VMS {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	cfg := volcengine.NewConfig().
		WithCredentials(credentials.NewStaticCredentials(ak, sk, token)).
		WithRegion("cn-beijing").
		WithEndpoint(strings.TrimPrefix(srv.URL, "http://")).
		WithDisableSSL(true).
		WithHTTPClient(&http.Client{}). // the session would otherwise alter http.DefaultClient
		WithMaxRetries(0)
	sess, err := session.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sdkvms.New(sess)
}

func TestSDKClient(t *testing.T) {
	set := fault.NewSet(1)
	s, err := New(WithKey(testAK, testSK), WithSTSToken(stsAK, stsSK, stsToken), WithFaults(set))
	if err != nil {
		t.Fatal(err)
	}
	c := sdkClient(t, s, testAK, testSK, "")
	ctx := context.Background()
	all := DefaultPools()

	t.Run("NumberPoolList", func(t *testing.T) {
		out, err := c.NumberPoolListWithContext(ctx, (&sdkvms.NumberPoolListInput{}).
			SetServiceType(200).SetSubServiceType(201).SetNumberPoolName("隐私号池").SetLimit(2).SetOffset(1))
		if err != nil {
			t.Fatal(err)
		}
		var want []Pool
		for _, p := range all {
			if p.SubServiceType == 201 && strings.Contains(p.Name, "隐私号池") {
				want = append(want, p)
			}
		}
		if len(want) < 3 {
			t.Fatalf("the seed has %d matching pools; the case needs 3", len(want))
		}
		if *out.Total != int32(len(want)) || *out.Limit != 2 || *out.Offset != 1 || len(out.Records) != 2 {
			t.Fatalf("Total %d Limit %d Offset %d records %d", *out.Total, *out.Limit, *out.Offset, len(out.Records))
		}
		r := out.Records[0]
		if *r.NumberPoolNo != want[1].No || *r.NumberPoolName != want[1].Name || *r.ServiceType != 200 ||
			*r.ServiceTypeName != "隐私号服务" || *r.SubServiceType != 201 || *r.SubServiceTypeName != "AXB" ||
			*r.NumberCount != int32(len(want[1].Numbers)) {
			t.Fatalf("record %s", r)
		}
		if out.Metadata == nil || out.Metadata.RequestId == "" || out.Metadata.Action != "NumberPoolList" {
			t.Fatalf("metadata %+v", out.Metadata)
		}
	})

	t.Run("NumberList", func(t *testing.T) {
		p := all[13]
		out, err := c.NumberListWithContext(ctx, (&sdkvms.NumberListInput{}).
			SetNumberPoolNo(p.No).SetNumberList([]*string{&p.Numbers[0].Number, &p.Numbers[5].Number}).
			SetNumberPoolTypeCode(201).SetNumberTypeCode(0))
		if err != nil {
			t.Fatal(err)
		}
		if *out.Total != 2 || len(out.Records) != 2 {
			t.Fatalf("Total %d records %d", *out.Total, len(out.Records))
		}
		r := out.Records[1]
		n := p.Numbers[5]
		if *r.Number != n.Number || *r.NumberStatusCode != int32(n.StatusCode) || *r.NumberStatusDesc != numberStatusDescs[n.StatusCode] ||
			*r.NumberLocation != n.Location || *r.CurrentBindCount != int32(n.BindCount) || *r.NumberPoolNo != p.No ||
			*r.NumberPurchaseTime != purchaseTime(n.PurchaseTime) || *r.NumberTypeDesc != "手机" {
			t.Fatalf("record %s", r)
		}
		out, err = c.NumberListWithContext(ctx, (&sdkvms.NumberListInput{}).SetNumberStatusCode(2).SetLimit(3))
		if err != nil || *out.Limit != 3 || len(out.Records) != 3 {
			t.Fatalf("status filter: %v %s", err, out)
		}
		for _, r := range out.Records {
			if *r.NumberStatusCode != 2 {
				t.Fatalf("status filter let through %s", r)
			}
		}
	})

	t.Run("STS", func(t *testing.T) {
		if _, err := sdkClient(t, s, stsAK, stsSK, stsToken).NumberPoolListWithContext(ctx, &sdkvms.NumberPoolListInput{}); err != nil {
			t.Fatal(err)
		}
	})

	refusals := []struct {
		name   string
		client *sdkvms.VMS
		fault  string
		status int
		code   string
	}{
		{"wrong secret", sdkClient(t, s, testAK, "wrong", ""), "", 401, "SignatureDoesNotMatch"},
		{"unknown key", sdkClient(t, s, "AKLTnobody", testSK, ""), "", 401, "InvalidAccessKey"},
		{"STS without token", sdkClient(t, s, stsAK, stsSK, ""), "", 401, "InvalidSecretToken"},
		{"business error with 200", c, "SystemError", 200, "SystemError"},
		{"gateway error", c, "ServiceUnavailableTemp", 503, "ServiceUnavailableTemp"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			set.Set("NumberPoolList", fault.Fault{ErrorCode: tc.fault})
			defer set.Set("NumberPoolList", fault.Fault{})
			_, err := tc.client.NumberPoolListWithContext(ctx, &sdkvms.NumberPoolListInput{})
			var rf volcengineerr.RequestFailure
			if !errors.As(err, &rf) {
				t.Fatalf("got %v, want a RequestFailure", err)
			}
			if rf.Code() != tc.code || rf.StatusCode() != tc.status || rf.RequestID() == "" {
				t.Fatalf("got %s %d %q, want %s %d", rf.Code(), rf.StatusCode(), rf.RequestID(), tc.code, tc.status)
			}
		})
	}
}
