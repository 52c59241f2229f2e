package provider

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/xnum-dev/xnum/internal/cn"
)

// maxCityLen bounds a city name: Dyplsapi's cities are a few characters, and
// an unbounded string only costs us memory and log space.
const maxCityLen = 32

// Validate checks q against the rules of QuerySecretNoRemain. It returns nil
// or an *Error of kind ErrInvalidParameter naming the field.
func (q RemainQuery) Validate() error {
	if err := validateSpec(q.SpecID); err != nil {
		return err
	}
	if err := validateCity(q.City, q.SpecID, true); err != nil {
		return err
	}
	return validatePrefix(q.Prefix)
}

// Validate checks r against the rules of BuySecretNo: a real city (not a
// nationwide aggregate, except 全国通用 for 95 numbers) and a pool key.
func (r BuyRequest) Validate() error {
	if r.PoolKey == "" {
		return Invalid("poolKey", "poolKey is required")
	}
	if len(r.PoolKey) > 64 || !printableASCII(r.PoolKey) {
		return Invalid("poolKey", "poolKey must be at most 64 printable ASCII characters")
	}
	if err := validateSpec(r.SpecID); err != nil {
		return err
	}
	if err := validateCity(r.City, r.SpecID, false); err != nil {
		return err
	}
	return validatePrefix(r.Prefix)
}

// WithDefaults returns q with the default page size filled in.
func (q PoolQuery) WithDefaults() PoolQuery {
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	return q
}

// Validate checks the paging and filters of q. A zero Limit is valid and
// means DefaultLimit.
func (q PoolQuery) Validate() error {
	if err := validatePage(q.Offset, q.Limit); err != nil {
		return err
	}
	if q.ServiceType < 0 {
		return Invalid("serviceType", "serviceType must be a positive number")
	}
	if q.SubServiceType < 0 {
		return Invalid("subServiceType", "subServiceType must be a positive number")
	}
	if err := validateText("poolNo", q.PoolNo, 64); err != nil {
		return err
	}
	return validateText("name", q.Name, 64)
}

// WithDefaults returns q with the default page size filled in.
func (q NumberQuery) WithDefaults() NumberQuery {
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	return q
}

// Validate checks the paging and filters of q.
func (q NumberQuery) Validate() error {
	if err := validatePage(q.Offset, q.Limit); err != nil {
		return err
	}
	if err := validateText("poolNo", q.PoolNo, 64); err != nil {
		return err
	}
	if len(q.Numbers) > MaxLimit {
		return Invalid("numbers", fmt.Sprintf("numbers must list at most %d numbers", MaxLimit))
	}
	for _, n := range q.Numbers {
		if !cn.PhoneNumber(n) {
			return Invalid("numbers", "numbers must be phone numbers of digits only")
		}
	}
	if q.PoolType < 0 || q.StatusCode < 0 || q.TypeCode < 0 {
		return Invalid("poolType", "poolType, statusCode and typeCode must be positive numbers")
	}
	return nil
}

func validatePage(offset, limit int) error {
	if offset < 0 {
		return Invalid("offset", "offset must be 0 or more")
	}
	if limit != 0 && (limit < 1 || limit > MaxLimit) {
		return Invalid("limit", fmt.Sprintf("limit must be between 1 and %d", MaxLimit))
	}
	return nil
}

func validateSpec(s SpecID) error {
	switch s {
	case SpecVirtual, SpecCarrier, Spec95:
		return nil
	}
	return Invalid("specId", "specId must be 1, 2 or 3")
}

// validateCity applies the seeds' rules: 95 numbers have the one city
// 全国通用 and it belongs to them alone; 全国 and 全国列表 are aggregates a
// query may ask for but a buy may not.
func validateCity(city string, spec SpecID, query bool) error {
	switch {
	case city == "":
		return Invalid("city", "city is required")
	case !utf8.ValidString(city) || utf8.RuneCountInString(city) > maxCityLen:
		return Invalid("city", fmt.Sprintf("city must be at most %d characters of UTF-8", maxCityLen))
	case spec == Spec95 && city != CityUniversal:
		return Invalid("city", "specId 3 (95 numbers) needs city "+CityUniversal)
	case city == CityUniversal && spec != Spec95:
		return Invalid("city", "city "+CityUniversal+" goes with specId 3 only")
	case city == CityNationwide || city == CityNationwideList:
		if !query {
			return Invalid("city", "city "+city+" is for queries; a buy needs one city")
		}
	case !cityName(city):
		return Invalid("city", "city must be a city name, without digits, spaces or punctuation")
	}
	return nil
}

func validatePrefix(p string) error {
	if len(p) > MaxPrefixLen {
		return Invalid("prefix", fmt.Sprintf("prefix must be at most %d digits", MaxPrefixLen))
	}
	if !cn.Digits(p) {
		return Invalid("prefix", "prefix must be digits only")
	}
	return nil
}

// validateText checks a free-text parameter: at most max characters of
// UTF-8 and no control characters. A CR or LF would split the log line or
// header the value ends up in, and no pool number or name has one.
func validateText(field, s string, max int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return Invalid(field, fmt.Sprintf("%s must be at most %d characters of UTF-8", field, max))
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return Invalid(field, field+" must not contain control characters or line breaks")
		}
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// cityName accepts letters of any script (杭州, Hangzhou) and the middle dot
// of names like 阿拉善·盟 but no digits, spaces, punctuation or controls.
func cityName(s string) bool {
	for _, r := range s {
		if r == '·' {
			continue
		}
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}
