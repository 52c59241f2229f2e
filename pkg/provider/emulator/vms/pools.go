package vms

import (
	"fmt"
	"time"

	"github.com/xnum-dev/xnum/internal/cn"
)

// Pool is one number pool the emulator serves, with its numbers. NumberPoolList
// reports len(Numbers) as its NumberCount.
type Pool struct {
	No             string // NumberPoolNo, e.g. "NP162213338604093530"
	Name           string
	ServiceType    int // 100 voice, 200 privacy numbers
	SubServiceType int // e.g. 102 voice notification, 201 AXB
	Numbers        []Number
}

// Number is one number in a pool.
type Number struct {
	Number          string
	Location        string // e.g. "浙江杭州"
	TypeCode        int    // 0 mobile, 1 fixed line
	StatusCode      int    // 1 in use, 2 disabled by the user, 3 disabled by the platform, 4 cancelled
	QualificationNo string
	BindCount       int       // current bindings
	PurchaseTime    time.Time // reported in Asia/Shanghai, "2006-01-02 15:04:05"
}

// The enumerations of VMS.
const (
	ServiceVoice   = 100
	ServicePrivacy = 200
)

var serviceTypeNames = map[int]string{
	ServiceVoice:   "语音服务",
	ServicePrivacy: "隐私号服务",
}

var subServiceTypeNames = map[int]string{
	101: "SIP",
	102: "语音通知",
	103: "双呼",
	104: "智能外呼",
	105: "双呼轻量版",
	201: "AXB",
	202: "AXN",
	203: "AXNE",
	204: "AXYB",
	205: "PAXYB",
}

// subServiceParent is the service type each sub-service type belongs to.
func subServiceParent(sub int) int { return sub / 100 * 100 }

var numberStatusDescs = map[int]string{
	1: "使用中",
	2: "用户停用",
	3: "平台停用",
	4: "已注销",
}

var numberTypeDescs = map[int]string{
	0: "手机",
	1: "固话",
}

// checkPools refuses pools a cloud could not hold: a pool without number or
// name, a pool number or phone number given twice (here or in existing), or
// a field outside VMS's enumerations.
func checkPools(existing, pools []Pool) error {
	poolNos := map[string]bool{}
	numbers := map[string]bool{}
	for _, p := range existing {
		poolNos[p.No] = true
		for _, n := range p.Numbers {
			numbers[n.Number] = true
		}
	}
	for _, p := range pools {
		switch {
		case p.No == "":
			return fmt.Errorf("vms: pool %q has no number (No)", p.Name)
		case p.Name == "":
			return fmt.Errorf("vms: pool %s has no Name", p.No)
		case poolNos[p.No]:
			return fmt.Errorf("vms: pool %s is given twice", p.No)
		case serviceTypeNames[p.ServiceType] == "":
			return fmt.Errorf("vms: pool %s: ServiceType %d is not 100 or 200", p.No, p.ServiceType)
		case subServiceTypeNames[p.SubServiceType] == "" || subServiceParent(p.SubServiceType) != p.ServiceType:
			return fmt.Errorf("vms: pool %s: SubServiceType %d is not a sub-service of %d", p.No, p.SubServiceType, p.ServiceType)
		}
		poolNos[p.No] = true
		for _, n := range p.Numbers {
			switch {
			case !cn.PhoneNumber(n.Number):
				return fmt.Errorf("vms: pool %s: number %q is not digits", p.No, n.Number)
			case numbers[n.Number]:
				return fmt.Errorf("vms: number %s is given twice", n.Number)
			case numberTypeDescs[n.TypeCode] == "":
				return fmt.Errorf("vms: number %s: TypeCode %d is not 0 or 1", n.Number, n.TypeCode)
			case numberStatusDescs[n.StatusCode] == "":
				return fmt.Errorf("vms: number %s: StatusCode %d is not 1 to 4", n.Number, n.StatusCode)
			case n.BindCount < 0:
				return fmt.Errorf("vms: number %s: BindCount is negative", n.Number)
			}
			numbers[n.Number] = true
		}
	}
	return nil
}

// clonePools copies pools deeply, so neither the caller nor the server can
// change the other's.
func clonePools(pools []Pool) []Pool {
	out := make([]Pool, len(pools))
	for i, p := range pools {
		p.Numbers = append([]Number(nil), p.Numbers...)
		out[i] = p
	}
	return out
}

// seedPool describes one pool of the default seed.
type seedPool struct {
	name     string
	service  int
	sub      int
	location string
	prefix   string // the first digits of its numbers
	fixed    bool   // fixed-line numbers
	count    int
}

// seed is the default account: 26 pools over both service types and every
// sub-service type, three more than a page of 20 with room to page by 10,
// holding from none to a dozen numbers.
var seed = []seedPool{
	{"营销号码池", ServiceVoice, 104, "北京", "0101000", true, 12},
	{"营销号码池-华东", ServiceVoice, 104, "浙江杭州", "0571100", true, 8},
	{"营销号码池-华南", ServiceVoice, 104, "广东深圳", "0755100", true, 6},
	{"外呼号码池-北京", ServiceVoice, 104, "北京", "0102000", true, 5},
	{"通知号码池", ServiceVoice, 102, "北京", "0103000", true, 10},
	{"通知号码池-上海", ServiceVoice, 102, "上海", "0211000", true, 4},
	{"验证码通知池", ServiceVoice, 102, "浙江杭州", "0571200", true, 3},
	{"SIP中继号码池", ServiceVoice, 101, "北京", "0104000", true, 6},
	{"SIP中继号码池-成都", ServiceVoice, 101, "四川成都", "0281000", true, 2},
	{"双呼号码池", ServiceVoice, 103, "上海", "0212000", true, 7},
	{"双呼号码池-武汉", ServiceVoice, 103, "湖北武汉", "0271000", true, 3},
	{"双呼轻量版号码池", ServiceVoice, 105, "江苏南京", "0251000", true, 4},
	{"空号码池", ServiceVoice, 102, "北京", "0105000", true, 0},
	{"骑手隐私号池-杭州", ServicePrivacy, 201, "浙江杭州", "1705710", false, 12},
	{"骑手隐私号池-上海", ServicePrivacy, 201, "上海", "1705210", false, 9},
	{"快递隐私号池-北京", ServicePrivacy, 201, "北京", "1710100", false, 8},
	{"网约车隐私号池", ServicePrivacy, 201, "广东广州", "1702000", false, 10},
	{"外卖AXN号码池", ServicePrivacy, 202, "浙江杭州", "1715710", false, 6},
	{"房产经纪AXN号码池", ServicePrivacy, 202, "北京", "1700100", false, 5},
	{"客服AXNE号码池", ServicePrivacy, 203, "上海", "1702100", false, 4},
	{"家政AXYB号码池", ServicePrivacy, 204, "广东深圳", "1707550", false, 5},
	{"招聘AXYB号码池", ServicePrivacy, 204, "四川成都", "1712800", false, 3},
	{"二手车PAXYB号码池", ServicePrivacy, 205, "江苏南京", "1702500", false, 4},
	{"医疗陪诊隐私号池", ServicePrivacy, 201, "湖北武汉", "1702700", false, 2},
	{"营销隐私号池-测试", ServicePrivacy, 202, "北京", "1700200", false, 1},
	{"停用隐私号池", ServicePrivacy, 201, "上海", "1705220", false, 0},
}

// DefaultPools returns the default seed: 26 pools, 139 numbers. Every pool
// has a distinct NumberPoolNo; the numbers are mostly in use (status 1), with
// some disabled or cancelled, and privacy numbers have bindings.
func DefaultPools() []Pool {
	base := time.Date(2023, 3, 1, 9, 30, 0, 0, cn.Shanghai)
	pools := make([]Pool, 0, len(seed))
	for i, s := range seed {
		p := Pool{
			No:             fmt.Sprintf("NP1623%014d", 100000+i*7919),
			Name:           s.name,
			ServiceType:    s.service,
			SubServiceType: s.sub,
		}
		for j := range s.count {
			n := Number{
				Location:     s.location,
				StatusCode:   1,
				PurchaseTime: base.AddDate(0, 0, i*11+j).Add(time.Duration(j*37) * time.Minute),
			}
			if s.fixed {
				n.Number = fmt.Sprintf("%s%05d", s.prefix, j*13+1)
				n.TypeCode = 1
				n.QualificationNo = fmt.Sprintf("QN2023%06d", 1000+i)
			} else {
				n.Number = fmt.Sprintf("%s%04d", s.prefix, j*17+3)
				n.BindCount = (i + j) % 6
			}
			switch {
			case j%7 == 5:
				n.StatusCode = 2
			case j%11 == 9:
				n.StatusCode = 3
			case j == 11:
				n.StatusCode = 4
				n.BindCount = 0
			}
			p.Numbers = append(p.Numbers, n)
		}
		pools = append(pools, p)
	}
	return pools
}
