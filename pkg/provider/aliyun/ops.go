package aliyun

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/responses"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/dyplsapi"

	"github.com/xnum-dev/xnum/internal/cn"
	"github.com/xnum-dev/xnum/pkg/provider"
)

// Remain asks QuerySecretNoRemain how many numbers can be bought. For
// 全国列表 it lists the cities with stock and Amount is their sum.
func (c *Client) Remain(ctx context.Context, q provider.RemainQuery) (provider.RemainResult, error) {
	if err := q.Validate(); err != nil {
		return provider.RemainResult{}, err
	}
	var resp remainAnswer
	err := c.do(ctx, "QuerySecretNoRemain", readOnly, func() exchange {
		req := dyplsapi.CreateQuerySecretNoRemainRequest()
		req.SpecId = requests.NewInteger(int(q.SpecID))
		req.City = q.City
		req.SecretNo = q.Prefix
		raw := responses.NewCommonResponse()
		resp = remainAnswer{}
		return exchange{req: req, resp: raw, answer: func() (string, string, string) {
			if json.Unmarshal(raw.GetHttpContentBytes(), &resp) != nil {
				return "", "", ""
			}
			return resp.Code, resp.Message, resp.RequestId
		}}
	})
	if err != nil {
		return provider.RemainResult{}, err
	}
	res := provider.RemainResult{City: q.City, SpecID: q.SpecID, Prefix: q.Prefix}
	if q.City != provider.CityNationwideList {
		res.Amount = resp.SecretRemainDTO.Amount
		return res, nil
	}
	res.Cities = make([]provider.CityAmount, 0, len(resp.SecretRemainDTO.RemainDTOList.RemainDTO))
	for _, r := range resp.SecretRemainDTO.RemainDTOList.RemainDTO {
		res.Cities = append(res.Cities, provider.CityAmount{City: r.City, Amount: r.Amount})
		res.Amount += r.Amount
	}
	return res, nil
}

// Buy buys one number with BuySecretNo. It sends the request at most once;
// an error matching provider.ErrInDoubt means the request was sent and its
// outcome is unknown: do not buy again before settling it.
func (c *Client) Buy(ctx context.Context, r provider.BuyRequest) (provider.BuyResult, error) {
	if err := r.Validate(); err != nil {
		return provider.BuyResult{}, err
	}
	var resp *dyplsapi.BuySecretNoResponse
	err := c.do(ctx, "BuySecretNo", spendsMoney, func() exchange {
		req := dyplsapi.CreateBuySecretNoRequest()
		req.PoolKey = r.PoolKey
		req.SpecId = requests.NewInteger(int(r.SpecID))
		req.City = r.City
		req.SecretNo = r.Prefix
		if r.DisplayPool {
			req.DisplayPool = requests.NewBoolean(true)
		}
		resp = dyplsapi.CreateBuySecretNoResponse()
		return exchange{req: req, resp: resp, answer: func() (string, string, string) { return resp.Code, resp.Message, resp.RequestId }}
	})
	if err != nil {
		return provider.BuyResult{}, err
	}
	if resp.SecretBuyInfoDTO.SecretNo == "" {
		// The cloud says it sold a number but not which: settle it like a lost answer.
		return provider.BuyResult{}, &provider.Error{Kind: provider.ErrInDoubt, Provider: Name, Op: "BuySecretNo",
			Code: resp.Code, RequestID: resp.RequestId, Status: resp.GetHttpStatus(), Message: "the answer is OK but names no number"}
	}
	return provider.BuyResult{SecretNo: resp.SecretBuyInfoDTO.SecretNo, RequestID: resp.RequestId}, nil
}

// NumberDetail asks QuerySecretNoDetail about a number in a pool. A number
// not in the pool is an error matching provider.ErrNotFound.
func (c *Client) NumberDetail(ctx context.Context, poolKey, secretNo string) (provider.NumberDetail, error) {
	if err := validateNumber(poolKey, secretNo); err != nil {
		return provider.NumberDetail{}, err
	}
	var resp *dyplsapi.QuerySecretNoDetailResponse
	err := c.do(ctx, "QuerySecretNoDetail", readOnly, func() exchange {
		req := dyplsapi.CreateQuerySecretNoDetailRequest()
		req.PoolKey = poolKey
		req.SecretNo = secretNo
		resp = dyplsapi.CreateQuerySecretNoDetailResponse()
		return exchange{req: req, resp: resp, answer: func() (string, string, string) { return resp.Code, resp.Message, resp.RequestId }}
	})
	if err != nil {
		return provider.NumberDetail{}, err
	}
	info := resp.SecretNoInfoDTO
	d := provider.NumberDetail{
		SecretNo:      secretNo,
		PoolKey:       poolKey,
		Vendor:        info.Vendor,
		Province:      info.Province,
		City:          info.City,
		Status:        provider.NumberStatus(info.SecretStatus),
		CertifyStatus: info.CertifyStatus,
		RequestID:     resp.RequestId,
	}
	if info.PurchaseTime != "" {
		t, err := time.ParseInLocation(cn.TimeLayout, info.PurchaseTime, cn.Shanghai)
		if err != nil {
			// The number's presence is the evidence; a time we cannot read
			// should not hide it.
			c.log.LogAttrs(ctx, slog.LevelWarn, "unreadable PurchaseTime",
				slog.String("requestId", resp.RequestId), slog.String("purchaseTime", info.PurchaseTime))
		} else {
			d.PurchaseTime = t
		}
	}
	return d, nil
}

// Release gives a number back with ReleaseSecretNo. It is irreversible; it
// is re-sent only after a throttled answer, and a release whose answer was
// lost is an error matching provider.ErrInDoubt.
func (c *Client) Release(ctx context.Context, poolKey, secretNo string) error {
	if err := validateNumber(poolKey, secretNo); err != nil {
		return err
	}
	return c.do(ctx, "ReleaseSecretNo", irreversible, func() exchange {
		req := dyplsapi.CreateReleaseSecretNoRequest()
		req.PoolKey = poolKey
		req.SecretNo = secretNo
		resp := dyplsapi.CreateReleaseSecretNoResponse()
		return exchange{req: req, resp: resp, answer: func() (string, string, string) { return resp.Code, resp.Message, resp.RequestId }}
	})
}

// validateNumber checks the pool key and number of NumberDetail and Release
// as BuyRequest.Validate checks a pool key.
func validateNumber(poolKey, secretNo string) error {
	if err := (provider.BuyRequest{PoolKey: poolKey, City: provider.CityUniversal, SpecID: provider.Spec95}).Validate(); err != nil {
		return err
	}
	if secretNo == "" {
		return provider.Invalid("secretNo", "secretNo is required")
	}
	if !cn.PhoneNumber(secretNo) {
		return provider.Invalid("secretNo", fmt.Sprintf("secretNo must be a phone number of at most %d digits", cn.MaxNumberLen))
	}
	return nil
}

// remainAnswer is QuerySecretNoRemain's JSON answer, decoded with
// encoding/json: the SDK's json-iterator spends about a millisecond
// building its decoder on a process's first call, which is most of a cold
// start's first answer.
type remainAnswer struct {
	RequestId       string
	Code            string
	Message         string
	SecretRemainDTO struct {
		City          string
		Amount        int64
		RemainDTOList struct {
			RemainDTO []struct {
				City   string
				Amount int64
			} `json:"remainDTO"`
		}
	}
}
