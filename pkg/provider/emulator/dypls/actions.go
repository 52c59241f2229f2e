package dypls

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xnum-dev/xnum/internal/cn"
)

// action serves one API action of an authenticated, unfaulted call. It
// returns the answer body (without the layer's status) or a refusal.
type action func(s *Server, p url.Values, c *call) (any, *apiError)

var actions = map[string]action{
	"QuerySecretNoRemain": (*Server).querySecretNoRemain,
	"BuySecretNo":         (*Server).buySecretNo,
	"QuerySecretNoDetail": (*Server).querySecretNoDetail,
	"ReleaseSecretNo":     (*Server).releaseSecretNo,
}

// Answer bodies, shaped as the SDK's response structs parse them
// (services/dyplsapi): mind the lower-case remainDTO.
type (
	remainResponse struct {
		result
		SecretRemainDTO secretRemainDTO `json:"SecretRemainDTO" xml:"SecretRemainDTO"`
	}
	secretRemainDTO struct {
		Amount        int64          `json:"Amount" xml:"Amount"`
		City          string         `json:"City" xml:"City"`
		RemainDTOList *remainDTOList `json:"RemainDTOList,omitempty" xml:"RemainDTOList,omitempty"`
	}
	remainDTOList struct {
		RemainDTO []remainDTO `json:"remainDTO" xml:"remainDTO"`
	}
	remainDTO struct {
		Amount int64  `json:"Amount" xml:"Amount"`
		City   string `json:"City" xml:"City"`
	}

	buyResponse struct {
		result
		SecretBuyInfoDTO secretBuyInfoDTO `json:"SecretBuyInfoDTO" xml:"SecretBuyInfoDTO"`
	}
	secretBuyInfoDTO struct {
		SecretNo string `json:"SecretNo" xml:"SecretNo"`
	}

	detailResponse struct {
		result
		SecretNoInfoDTO secretNoInfoDTO `json:"SecretNoInfoDTO" xml:"SecretNoInfoDTO"`
	}
	secretNoInfoDTO struct {
		PurchaseTime  string `json:"PurchaseTime" xml:"PurchaseTime"`
		Vendor        int64  `json:"Vendor" xml:"Vendor"`
		Province      string `json:"Province" xml:"Province"`
		City          string `json:"City" xml:"City"`
		SecretStatus  int64  `json:"SecretStatus" xml:"SecretStatus"`
		CertifyStatus int    `json:"CertifyStatus" xml:"CertifyStatus"`
	}
)

func (s *Server) querySecretNoRemain(p url.Values, c *call) (any, *apiError) {
	if e := requireParams(p, "SpecId", "City"); e != nil {
		return nil, e
	}
	spec, city, prefix, e := specCityPrefix(p, true)
	if e != nil {
		return nil, e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	dto := secretRemainDTO{City: city}
	switch city {
	case CityNationwide:
		dto.Amount = s.inv.count(spec, prefix, "")
	case CityNationwideList:
		byCity := map[string]int64{}
		for _, n := range s.inv.matching(spec, prefix, "") {
			byCity[n.City]++
		}
		list := &remainDTOList{RemainDTO: []remainDTO{}}
		for city, amount := range byCity {
			list.RemainDTO = append(list.RemainDTO, remainDTO{Amount: amount, City: city})
			dto.Amount += amount
		}
		slices.SortFunc(list.RemainDTO, func(a, b remainDTO) int {
			return cmp.Or(cmp.Compare(b.Amount, a.Amount), strings.Compare(a.City, b.City))
		})
		dto.RemainDTOList = list
	default:
		dto.Amount = s.inv.count(spec, prefix, city)
	}
	return remainResponse{result: ok(c), SecretRemainDTO: dto}, nil
}

func (s *Server) buySecretNo(p url.Values, c *call) (any, *apiError) {
	if e := requireParams(p, "PoolKey", "SpecId", "City"); e != nil {
		return nil, e
	}
	spec, city, prefix, e := specCityPrefix(p, false)
	if e != nil {
		return nil, e
	}
	display := false
	if v := p.Get("DisplayPool"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, invalidParameters("DisplayPool must be true or false")
		}
		display = b
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	pool := s.inv.pools[p.Get("PoolKey")]
	if pool == nil {
		return nil, codeError("isv.POOLKEY_NOT_EXISTS")
	}
	n, found := s.inv.first(spec, prefix, city)
	if !found {
		return nil, codeError("isv.NO_AVAILABLE_NUMBER")
	}
	now := s.clock()
	s.inv.take(n)
	pool.numbers[n.SecretNo] = bought{Number: n, purchased: now, displayPool: display}
	s.purchases = append(s.purchases, Purchase{
		PoolKey: p.Get("PoolKey"), SecretNo: n.SecretNo, City: n.City, SpecID: n.SpecID,
		DisplayPool: display, RequestID: c.id, Time: now,
	})
	s.report(n, p.Get("PoolKey"), ReportCreated, now)
	return buyResponse{result: ok(c), SecretBuyInfoDTO: secretBuyInfoDTO{SecretNo: n.SecretNo}}, nil
}

func (s *Server) querySecretNoDetail(p url.Values, c *call) (any, *apiError) {
	b, e := s.inPool(p)
	if e != nil {
		return nil, e
	}
	return detailResponse{result: ok(c), SecretNoInfoDTO: secretNoInfoDTO{
		PurchaseTime: b.purchased.In(cn.Shanghai).Format(TimeLayout),
		Vendor:       b.Vendor,
		Province:     b.Province,
		City:         b.City,
	}}, nil
}

func (s *Server) releaseSecretNo(p url.Values, c *call) (any, *apiError) {
	b, e := s.inPool(p)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pool := s.inv.pools[p.Get("PoolKey")]
	if _, still := pool.numbers[b.SecretNo]; !still {
		// Released by a concurrent call between the lookup and now.
		return nil, codeError("isv.NO_NOT_EXIST")
	}
	delete(pool.numbers, b.SecretNo)
	s.report(b.Number, p.Get("PoolKey"), ReportDeleted, s.clock())
	return ok(c), nil
}

// inPool finds the number p names in the pool p names.
func (s *Server) inPool(p url.Values) (bought, *apiError) {
	if e := requireParams(p, "PoolKey", "SecretNo"); e != nil {
		return bought{}, e
	}
	no := p.Get("SecretNo")
	if !cn.PhoneNumber(no) {
		return bought{}, invalidParameters("SecretNo must be a phone number of digits")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pool := s.inv.pools[p.Get("PoolKey")]
	if pool == nil {
		return bought{}, codeError("isv.POOLKEY_NOT_EXISTS")
	}
	b, ok := pool.numbers[no]
	if !ok {
		return bought{}, codeError("isv.NO_NOT_EXIST")
	}
	return b, nil
}

// report records a NumberManagementReport; the caller holds the lock.
func (s *Server) report(n Number, poolKey string, status int, at time.Time) {
	r := Report{
		SecretNo: n.SecretNo, City: n.City, PartnerKey: poolKey,
		OperatingTime: at.In(cn.Shanghai).Format(TimeLayout), Status: status, Vendor: n.Vendor,
	}
	s.reports = append(s.reports, r)
	if s.onReport != nil {
		s.onReport(r)
	}
}

func requireParams(p url.Values, names ...string) *apiError {
	for _, n := range names {
		if p.Get(n) == "" {
			return missing(n)
		}
	}
	return nil
}

// specCityPrefix checks SpecId, City and the SecretNo prefix against the
// product's rules; query allows the nationwide aggregates.
func specCityPrefix(p url.Values, query bool) (spec int, city, prefix string, e *apiError) {
	spec, err := strconv.Atoi(p.Get("SpecId"))
	if err != nil || spec < SpecVirtual || spec > Spec95 {
		return 0, "", "", invalidParameters("SpecId must be 1, 2 or 3")
	}
	city = p.Get("City")
	switch {
	case !utf8.ValidString(city) || utf8.RuneCountInString(city) > 32:
		return 0, "", "", invalidParameters("City is not a city")
	case spec == Spec95 && city != CityUniversal:
		return 0, "", "", invalidParameters("SpecId 3 needs City " + CityUniversal)
	case spec != Spec95 && city == CityUniversal:
		return 0, "", "", invalidParameters("City " + CityUniversal + " needs SpecId 3")
	case !query && (city == CityNationwide || city == CityNationwideList):
		return 0, "", "", invalidParameters("City " + city + " cannot be bought from")
	}
	prefix = p.Get("SecretNo")
	if len(prefix) > 18 || !cn.Digits(prefix) {
		return 0, "", "", invalidParameters("SecretNo must be a prefix of at most 18 digits")
	}
	return spec, city, prefix, nil
}
