package dypls

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xnum-dev/xnum/internal/cn"
)

// Number types (SpecId) and the special cities of Dyplsapi.
const (
	SpecVirtual = 1 // virtual-operator numbers, 170/171
	SpecCarrier = 2 // carrier numbers
	Spec95      = 3 // 95 numbers

	CityNationwide     = "全国"
	CityNationwideList = "全国列表"
	CityUniversal      = "全国通用"
)

// Carriers, as Dyplsapi reports a number's Vendor.
const (
	VendorMobile  = 1 // China Mobile
	VendorUnicom  = 2 // China Unicom
	VendorTelecom = 3 // China Telecom
)

// DefaultPoolKey is the pool every emulator knows.
const DefaultPoolKey = "FC100000000000001"

// Number is one number the cloud can sell.
type Number struct {
	SecretNo string
	SpecID   int
	City     string // 全国通用 for 95 numbers
	Province string
	Vendor   int64
}

func (n Number) validate() error {
	switch {
	case !cn.PhoneNumber(n.SecretNo):
		return fmt.Errorf("dypls: number %q: SecretNo must be 1 to 20 digits", n.SecretNo)
	case n.SpecID < SpecVirtual || n.SpecID > Spec95:
		return fmt.Errorf("dypls: number %s: SpecID must be 1, 2 or 3", n.SecretNo)
	case n.SpecID == Spec95 && n.City != CityUniversal:
		return fmt.Errorf("dypls: number %s: 95 numbers belong to city %s", n.SecretNo, CityUniversal)
	case n.SpecID != Spec95 && (n.City == CityUniversal || n.City == CityNationwide || n.City == CityNationwideList):
		return fmt.Errorf("dypls: number %s: city %s is not a city", n.SecretNo, n.City)
	case n.City == "" || !utf8.ValidString(n.City):
		return fmt.Errorf("dypls: number %s: City is required", n.SecretNo)
	}
	return nil
}

// seedCity is one city of the default seed and how many numbers of each
// type it stocks.
type seedCity struct {
	city, province string
	virtual        int
	carrier        int
}

// The default seed: six mainland cities with stock, 成都 without virtual
// numbers and 拉萨 with nothing at all, so every branch of a remain query
// has data to meet.
var seedCities = []seedCity{
	{"杭州", "浙江", 20, 40},
	{"北京", "北京", 15, 40},
	{"上海", "上海", 15, 30},
	{"广州", "广东", 10, 30},
	{"深圳", "广东", 10, 25},
	{"成都", "四川", 0, 25},
	{"拉萨", "西藏", 0, 0},
}

var (
	virtualPrefixes = []string{"1700", "1705", "1709", "1710"}
	carrierPrefixes = []string{
		"130", "131", "132", "155", "156", "185", "186", // Unicom
		"134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "182", "183", "187", "188", // Mobile
		"133", "153", "180", "181", "189", // Telecom
	}
)

// seed95 is the number of 95 numbers in the default seed.
const seed95 = 20

// DefaultNumbers returns the default seed: 70 virtual (170/171) and 190
// carrier numbers over 杭州 北京 上海 广州 深圳 成都 (成都 has no virtual
// numbers, 拉萨 has none of either), and 20 95 numbers under 全国通用. The
// numbers are the same on every call.
func DefaultNumbers() []Number {
	var nums []Number
	for i, c := range seedCities {
		for k := range c.virtual {
			p := virtualPrefixes[k%len(virtualPrefixes)]
			no := fmt.Sprintf("%s%02d%05d", p, i+1, k)
			nums = append(nums, Number{SecretNo: no, SpecID: SpecVirtual, City: c.city, Province: c.province, Vendor: vendorOf(no)})
		}
		for k := range c.carrier {
			p := carrierPrefixes[k%len(carrierPrefixes)]
			no := fmt.Sprintf("%s%02d%06d", p, i+1, k)
			nums = append(nums, Number{SecretNo: no, SpecID: SpecCarrier, City: c.city, Province: c.province, Vendor: vendorOf(no)})
		}
	}
	for k := range seed95 {
		nums = append(nums, Number{SecretNo: fmt.Sprintf("950130%06d", k), SpecID: Spec95, City: CityUniversal, Vendor: VendorMobile})
	}
	return nums
}

// vendorOf tells the carrier behind a mainland number by its prefix, as the
// carriers allocate them (1700-1702 Telecom, 1703/1705/1706 Mobile, the rest
// of 170 and all of 171 Unicom).
func vendorOf(no string) int64 {
	switch {
	case strings.HasPrefix(no, "170"):
		switch no[:4] {
		case "1700", "1701", "1702":
			return VendorTelecom
		case "1703", "1705", "1706":
			return VendorMobile
		}
		return VendorUnicom
	case strings.HasPrefix(no, "171"):
		return VendorUnicom
	}
	if len(no) < 3 {
		return VendorMobile
	}
	switch no[:3] {
	case "130", "131", "132", "155", "156", "185", "186", "145", "166", "175", "176":
		return VendorUnicom
	case "133", "153", "180", "181", "189", "173", "177", "199":
		return VendorTelecom
	}
	return VendorMobile
}

// inventory is the stock for sale and the numbers bought into pools. Its
// methods expect the Server's lock held.
type inventory struct {
	stock  map[string]Number            // for sale, by SecretNo
	byCity map[string]map[string]Number // the same, by City then SecretNo
	known  map[string]bool              // every number ever stocked, so none is added twice
	pools  map[string]*poolSet          // by PoolKey
}

type poolSet struct {
	numbers map[string]bought
}

type bought struct {
	Number
	purchased   time.Time
	displayPool bool
}

func newInventory() *inventory {
	return &inventory{stock: map[string]Number{}, byCity: map[string]map[string]Number{}, known: map[string]bool{}, pools: map[string]*poolSet{}}
}

func (inv *inventory) add(nums []Number) error {
	seen := map[string]bool{}
	for _, n := range nums {
		if err := n.validate(); err != nil {
			return err
		}
		if inv.known[n.SecretNo] || seen[n.SecretNo] {
			return fmt.Errorf("dypls: number %s is already stocked or sold", n.SecretNo)
		}
		seen[n.SecretNo] = true
	}
	for _, n := range nums {
		inv.stock[n.SecretNo] = n
		if inv.byCity[n.City] == nil {
			inv.byCity[n.City] = map[string]Number{}
		}
		inv.byCity[n.City][n.SecretNo] = n
		inv.known[n.SecretNo] = true
	}
	return nil
}

func (inv *inventory) addPool(key string) {
	if inv.pools[key] == nil {
		inv.pools[key] = &poolSet{numbers: map[string]bought{}}
	}
}

// take removes a number from sale.
func (inv *inventory) take(n Number) {
	delete(inv.stock, n.SecretNo)
	delete(inv.byCity[n.City], n.SecretNo)
}

// candidates are the numbers for sale of spec in city (every city when
// city is ""), whose SecretNo starts with prefix. A city's numbers are
// looked up, not scanned for: a pipeline run stocks thousands.
func (inv *inventory) candidates(spec int, prefix, city string) map[string]Number {
	if city != "" {
		return inv.byCity[city]
	}
	return inv.stock
}

func (n Number) matches(spec int, prefix string) bool {
	return n.SpecID == spec && strings.HasPrefix(n.SecretNo, prefix)
}

// count tells how many numbers match.
func (inv *inventory) count(spec int, prefix, city string) int64 {
	var c int64
	for _, n := range inv.candidates(spec, prefix, city) {
		if n.matches(spec, prefix) {
			c++
		}
	}
	return c
}

// first returns the matching number with the lowest SecretNo.
func (inv *inventory) first(spec int, prefix, city string) (Number, bool) {
	var best Number
	found := false
	for _, n := range inv.candidates(spec, prefix, city) {
		if n.matches(spec, prefix) && (!found || n.SecretNo < best.SecretNo) {
			best, found = n, true
		}
	}
	return best, found
}

// matching returns the numbers that match, in SecretNo order.
func (inv *inventory) matching(spec int, prefix, city string) []Number {
	var out []Number
	for _, n := range inv.candidates(spec, prefix, city) {
		if n.matches(spec, prefix) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b Number) int { return strings.Compare(a.SecretNo, b.SecretNo) })
	return out
}
