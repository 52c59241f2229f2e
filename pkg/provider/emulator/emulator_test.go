package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/dyplsapi"
	"github.com/volcengine/volcengine-go-sdk/service/vms"
	sdk "github.com/volcengine/volcengine-go-sdk/volcengine"
	"github.com/volcengine/volcengine-go-sdk/volcengine/credentials"
	"github.com/volcengine/volcengine-go-sdk/volcengine/session"

	"github.com/xnum-dev/xnum/pkg/provider"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/emulatortest"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
	vmsemu "github.com/xnum-dev/xnum/pkg/provider/emulator/vms"
	"github.com/xnum-dev/xnum/pkg/provider/volcengine"
)

// A seed either cloud refuses makes New fail with its reason.
func TestNewRefusesABadSeed(t *testing.T) {
	for name, opt := range map[string]emulator.Option{
		"dypls": emulator.WithDyplsOptions(dypls.WithNumbers(dypls.Number{SecretNo: "x", SpecID: dypls.SpecCarrier, City: "杭州"})),
		"vms":   emulator.WithVMSOptions(vmsemu.WithPools(vmsemu.Pool{Name: "no number"})),
	} {
		if e, err := emulator.New(opt); err == nil || e != nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: New = %v, %v; want an error from %s", name, e, err, name)
		}
	}
}

// The clouds' own SDK clients, not only ours, get answers from one emulator
// address with one key pair.
func TestOfficialSDKsOnOneAddress(t *testing.T) {
	srv := emulatortest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")

	ali, err := dyplsapi.NewClientWithAccessKey("cn-hangzhou", emulator.DefaultAccessKeyID, emulator.DefaultAccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	rq := dyplsapi.CreateQuerySecretNoRemainRequest()
	rq.Domain, rq.Scheme = host, "http"
	rq.SpecId = requests.NewInteger(1)
	rq.City = provider.CityNationwideList
	remain, err := ali.QuerySecretNoRemain(rq)
	if err != nil || remain.Code != "OK" {
		t.Fatalf("dyplsapi QuerySecretNoRemain: %v %+v", err, remain)
	}
	var sum int64
	for _, c := range remain.SecretRemainDTO.RemainDTOList.RemainDTO {
		sum += c.Amount
	}
	if len(remain.SecretRemainDTO.RemainDTOList.RemainDTO) < 2 || sum != remain.SecretRemainDTO.Amount {
		t.Fatalf("全国列表: %d cities summing to %d, amount %d", len(remain.SecretRemainDTO.RemainDTOList.RemainDTO), sum, remain.SecretRemainDTO.Amount)
	}

	sess, err := session.NewSession(sdk.NewConfig().
		WithCredentials(credentials.NewStaticCredentials(emulator.DefaultAccessKeyID, emulator.DefaultAccessKeySecret, "")).
		WithRegion("cn-beijing").WithEndpoint(host).WithDisableSSL(true).
		WithHTTPClient(&http.Client{}).WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	out, err := vms.New(sess).NumberPoolListWithContext(context.Background(), &vms.NumberPoolListInput{Limit: sdk.Int32(5)})
	if err != nil {
		t.Fatalf("vms NumberPoolList: %v", err)
	}
	if out.Total == nil || *out.Total < 5 || len(out.Records) != 5 {
		t.Fatalf("NumberPoolList: total %v, %d records", out.Total, len(out.Records))
	}
}

// Our clients on the one address: one fault set covers both clouds by
// action name, and a wrong key is refused by both.
func TestOurClientsShareKeyAndFaults(t *testing.T) {
	ctx := context.Background()
	srv := emulatortest.NewServer(t, emulator.WithFault("NumberPoolList", fault.Fault{ErrorCode: "FlowLimitExceeded"}))

	if _, err := srv.Aliyun(t).Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1}); err != nil {
		t.Fatalf("remain: %v", err)
	}
	_, err := srv.Volcengine(t).ListPools(ctx, provider.PoolQuery{})
	if !errors.Is(err, provider.ErrThrottled) {
		t.Fatalf("pools with an injected FlowLimitExceeded: %v, want Throttled", err)
	}
	srv.Faults().Set("NumberPoolList", fault.Fault{})
	if _, err := srv.Volcengine(t).ListPools(ctx, provider.PoolQuery{}); err != nil {
		t.Fatalf("pools after clearing the fault: %v", err)
	}

	badAli := srv.AliyunConfig()
	badAli.AccessKeySecret = "wrong"
	ac, err := aliyun.New(badAli)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1}); !errors.Is(err, provider.ErrUnauthorized) {
		t.Errorf("aliyun with a wrong secret: %v, want Unauthorized", err)
	}
	badVolc := srv.VolcengineConfig()
	badVolc.SecretAccessKey = "wrong"
	vc, err := volcengine.New(badVolc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.ListPools(ctx, provider.PoolQuery{}); !errors.Is(err, provider.ErrUnauthorized) {
		t.Errorf("volcengine with a wrong secret: %v, want Unauthorized", err)
	}
}

// With an STS key pair, both clouds want the token.
func TestSTSOnBothClouds(t *testing.T) {
	ctx := context.Background()
	srv := emulatortest.NewServer(t, emulator.WithSTSToken("STS.id", "sts-secret", "sts-token"))

	ac := srv.AliyunConfig()
	ac.AccessKeyID, ac.AccessKeySecret, ac.SecurityToken = "STS.id", "sts-secret", "sts-token"
	a, err := aliyun.New(ac)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1}); err != nil {
		t.Fatalf("aliyun with the token: %v", err)
	}
	vc := srv.VolcengineConfig()
	vc.AccessKeyID, vc.SecretAccessKey, vc.SessionToken = "STS.id", "sts-secret", "sts-token"
	v, err := volcengine.New(vc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.ListPools(ctx, provider.PoolQuery{}); err != nil {
		t.Fatalf("volcengine with the token: %v", err)
	}

	vc.SessionToken = ""
	v, _ = volcengine.New(vc)
	if _, err := v.ListPools(ctx, provider.PoolQuery{}); !errors.Is(err, provider.ErrUnauthorized) {
		t.Fatalf("volcengine without the token: %v, want Unauthorized", err)
	}
	ac.SecurityToken = ""
	a, _ = aliyun.New(ac)
	if _, err := a.Remain(ctx, provider.RemainQuery{City: "杭州", SpecID: 1}); !errors.Is(err, provider.ErrUnauthorized) {
		t.Fatalf("aliyun without the token: %v, want Unauthorized", err)
	}
}
