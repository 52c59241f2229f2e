// Package provider is the provider-neutral contract of xnum: the request and
// result types of the three operations, their validation, the capability
// interfaces the clouds' clients implement, and the one error taxonomy every
// runtime maps to a status.
//
// Clients live in subpackages (aliyun, volcengine); this package imports none
// of them, so a function links only the cloud it talks to.
package provider

import (
	"context"
	"iter"
	"strings"
	"time"

	"github.com/xnum-dev/xnum/internal/cn"
)

// SpecID is Dyplsapi's number type.
type SpecID int

const (
	SpecVirtual SpecID = 1 // virtual-operator numbers, 170/171
	SpecCarrier SpecID = 2 // carrier numbers
	Spec95      SpecID = 3 // 95 numbers, not tied to a city
)

// SpecOfNumber tells the number type of secretNo from its leading digits,
// as the mainland's numbering plan assigns them: 95… is Spec95; the
// virtual-operator segments 170, 171, 162, 165 and 167 are SpecVirtual; any
// other 11-digit mobile number (1…) is SpecCarrier. It is 0 for anything
// else. Evidence that a number was bought for an order must match the
// order's type.
func SpecOfNumber(secretNo string) SpecID {
	if !cn.PhoneNumber(secretNo) {
		return 0
	}
	switch {
	case strings.HasPrefix(secretNo, "95"):
		return Spec95
	case len(secretNo) != 11 || secretNo[0] != '1':
		return 0
	}
	switch secretNo[:3] {
	case "170", "171", "162", "165", "167":
		return SpecVirtual
	}
	return SpecCarrier
}

// Cities with a special meaning to Dyplsapi.
const (
	CityNationwide     = "全国"   // the total over all cities (SpecID 1 or 2)
	CityNationwideList = "全国列表" // per-city amounts, only cities with stock (SpecID 1 or 2)
	CityUniversal      = "全国通用" // the only city of 95 numbers (SpecID 3)
)

// MaxPrefixLen is the longest number prefix Dyplsapi accepts.
const MaxPrefixLen = 18

// Paging bounds of a pool or number listing.
const (
	DefaultLimit = 10
	MaxLimit     = 100
)

// RemainQuery asks how many numbers can be bought.
type RemainQuery struct {
	City   string `json:"city"`
	SpecID SpecID `json:"specId"`
	Prefix string `json:"prefix,omitempty"`
}

// CityAmount is one city's stock in a 全国列表 answer.
type CityAmount struct {
	City   string `json:"city"`
	Amount int64  `json:"amount"`
}

// RemainResult is the stock that matches a RemainQuery. Cities is set only
// for 全国列表, and then Amount is their sum.
type RemainResult struct {
	City   string       `json:"city"`
	SpecID SpecID       `json:"specId"`
	Prefix string       `json:"prefix"`
	Amount int64        `json:"amount"`
	Cities []CityAmount `json:"cities,omitempty"`
}

// BuyRequest buys one number into a pool. Dyplsapi sells one number per call.
type BuyRequest struct {
	PoolKey     string `json:"poolKey"`
	City        string `json:"city"`
	SpecID      SpecID `json:"specId"`
	Prefix      string `json:"prefix,omitempty"`
	DisplayPool bool   `json:"displayPool,omitempty"`
}

// BuyResult is the number a BuyRequest bought.
type BuyResult struct {
	SecretNo  string `json:"secretNo"`
	RequestID string `json:"requestId"`
}

// NumberStatus is Dyplsapi's SecretStatus of a bought number.
type NumberStatus int

const (
	NumberUnbound NumberStatus = 0
	NumberBound   NumberStatus = 1
	NumberLocked  NumberStatus = 2
	NumberFrozen  NumberStatus = 3
)

// NumberDetail is what Dyplsapi knows of one number in a pool
// (QuerySecretNoDetail). It is the evidence that settles a buy whose outcome
// was unknown.
type NumberDetail struct {
	SecretNo      string       `json:"secretNo"`
	PoolKey       string       `json:"poolKey"`
	Vendor        int64        `json:"vendor"`
	Province      string       `json:"province"`
	City          string       `json:"city"`
	Status        NumberStatus `json:"status"`
	CertifyStatus int          `json:"certifyStatus"`
	// PurchaseTime is in Asia/Shanghai, the zone Dyplsapi reports it in.
	PurchaseTime time.Time `json:"purchaseTime"`
	RequestID    string    `json:"requestId"`
}

// PoolQuery filters and pages Volcengine's number pools. Zero fields do not
// filter.
type PoolQuery struct {
	PoolNo         string `json:"poolNo,omitempty"`
	Name           string `json:"name,omitempty"`
	ServiceType    int    `json:"serviceType,omitempty"`
	SubServiceType int    `json:"subServiceType,omitempty"`
	Offset         int    `json:"offset"`
	Limit          int    `json:"limit"`
}

// Pool is one Volcengine number pool.
type Pool struct {
	PoolNo             string `json:"poolNo"`
	Name               string `json:"name"`
	ServiceType        int    `json:"serviceType"`
	ServiceTypeName    string `json:"serviceTypeName"`
	SubServiceType     int    `json:"subServiceType"`
	SubServiceTypeName string `json:"subServiceTypeName"`
	NumberCount        int    `json:"numberCount"`
}

// PoolPage is one page of pools. Total counts every match, not only Records.
type PoolPage struct {
	Total   int    `json:"total"`
	Offset  int    `json:"offset"`
	Limit   int    `json:"limit"`
	Records []Pool `json:"records"`
}

// NumberQuery filters and pages the numbers of Volcengine pools
// (NumberList). Zero fields do not filter.
type NumberQuery struct {
	PoolNo     string   `json:"poolNo,omitempty"`
	Numbers    []string `json:"numbers,omitempty"`
	PoolType   int      `json:"poolType,omitempty"`
	StatusCode int      `json:"statusCode,omitempty"`
	TypeCode   int      `json:"typeCode,omitempty"`
	Offset     int      `json:"offset"`
	Limit      int      `json:"limit"`
}

// Number is one number in a Volcengine pool.
type Number struct {
	Number           string `json:"number"`
	Location         string `json:"location"`
	PoolNo           string `json:"poolNo"`
	PoolName         string `json:"poolName"`
	PoolTypeCode     int    `json:"poolTypeCode"`
	PoolTypeDesc     string `json:"poolTypeDesc"`
	StatusCode       int    `json:"statusCode"`
	StatusDesc       string `json:"statusDesc"`
	TypeCode         int    `json:"typeCode"`
	TypeDesc         string `json:"typeDesc"`
	ServiceTypeCode  int    `json:"serviceTypeCode"`
	ServiceTypeDesc  string `json:"serviceTypeDesc"`
	QualificationNo  string `json:"qualificationNo,omitempty"`
	CurrentBindCount int    `json:"currentBindCount"`
	PurchaseTime     string `json:"purchaseTime"`
}

// NumberPage is one page of numbers.
type NumberPage struct {
	Total   int      `json:"total"`
	Offset  int      `json:"offset"`
	Limit   int      `json:"limit"`
	Records []Number `json:"records"`
}

// Inventory tells how many numbers can be bought.
type Inventory interface {
	Remain(ctx context.Context, q RemainQuery) (RemainResult, error)
}

// Purchaser buys one number. A call whose outcome is unknown returns an
// error that matches ErrInDoubt: the caller must not retry it blindly.
type Purchaser interface {
	Buy(ctx context.Context, r BuyRequest) (BuyResult, error)
}

// NumberInspector looks up one bought number in a pool. A number that is not
// in the pool is an error that matches ErrNotFound.
type NumberInspector interface {
	NumberDetail(ctx context.Context, poolKey, secretNo string) (NumberDetail, error)
}

// Releaser gives a bought number back. It is irreversible.
type Releaser interface {
	Release(ctx context.Context, poolKey, secretNo string) error
}

// PoolLister lists number pools one page at a time.
type PoolLister interface {
	ListPools(ctx context.Context, q PoolQuery) (PoolPage, error)
}

// NumberLister lists the numbers in pools one page at a time.
type NumberLister interface {
	ListNumbers(ctx context.Context, q NumberQuery) (NumberPage, error)
}

// AllPools yields every pool that matches q, page after page from q.Offset,
// with q.Limit as the page size. It stops at the first error, which it yields.
func AllPools(ctx context.Context, l PoolLister, q PoolQuery) iter.Seq2[Pool, error] {
	return func(yield func(Pool, error) bool) {
		q = q.WithDefaults()
		for {
			page, err := l.ListPools(ctx, q)
			if err != nil {
				yield(Pool{}, err)
				return
			}
			for _, p := range page.Records {
				if !yield(p, nil) {
					return
				}
			}
			q.Offset += len(page.Records)
			if len(page.Records) == 0 || q.Offset >= page.Total {
				return
			}
		}
	}
}
