// Package vms emulates the wire API of Volcengine VMS (隐私号/语音服务,
// service "vms", version 2022-01-01) as an http.Handler, for tests and local
// runs that cannot reach the cloud. The SDK's own client
// (github.com/volcengine/volcengine-go-sdk/service/vms) gets the answers it
// parses from the cloud.
//
// It serves NumberPoolList and NumberList: POST /?Action=...&Version=2022-01-01
// with a JSON body (as the SDK sends), a URL-encoded form body, or GET with the
// parameters in the query, as Volcengine's gateway accepts all three.
//
// Every request must carry the gateway's HMAC-SHA256 signature
// (Authorization: HMAC-SHA256 Credential=AK/YYYYMMDD/region/vms/request,
// SignedHeaders=..., Signature=...), which is checked as the gateway checks
// it: the signed headers are those SignedHeaders lists and must include host
// and x-date; X-Date must be within 900 s of the server's clock; the scope's
// date must be X-Date's, its service vms and its region cn-beijing or
// cn-north-1; X-Content-Sha256, when sent, must be the body's SHA-256; an STS
// key needs its session token in X-Security-Token. There is no nonce, so a
// replayed request is answered again: the SDK's retries re-send the same
// signature.
//
// Errors come back as the cloud sends them,
// {"ResponseMetadata":{...,"Error":{"CodeN":...,"Code":"...","Message":"..."}}},
// with the cloud's HTTP status; VMS's business codes (SystemError,
// IllegalArgument, DownStreamError) with HTTP 200.
//
// Choices where the cloud's documents are silent:
//   - NumberPoolName matches a substring of the pool's name (the console's
//     search box does so); NumberPoolNo, the types and the codes match exactly.
//   - Limit defaults to 20; a Limit over the cap (100 for NumberPoolList, 500
//     for NumberList, which VMS documents as its most numbers per query) is
//     lowered to the cap, and Result.Limit says so. A negative Offset or
//     Limit is InvalidParameter.
//   - Type and status filters outside VMS's enumerations are IllegalArgument;
//     a malformed value (not an integer, out of int32) is InvalidParameter.
//     A zero ServiceType, SubServiceType, NumberPoolTypeCode or
//     NumberStatusCode does not filter; NumberTypeCode 0 means mobile numbers.
//   - A body over 1 MiB is InvalidParameter.
package vms

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/xnum-dev/xnum/internal/cn"
	"github.com/xnum-dev/xnum/internal/wait"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// APIVersion is the only version the emulator serves.
const APIVersion = "2022-01-01"

// The credentials the emulator accepts when no WithKey or WithSTSToken is
// given: the project's development key pair.
const (
	DefaultAccessKeyID     = "xnum-dev-key"
	DefaultSecretAccessKey = "xnum-dev-secret"
)

// maxBody bounds a request body; the API's parameters are a few hundred bytes.
const maxBody = 1 << 20

// Server is the emulated VMS API. It is safe for concurrent use.
type Server struct {
	verifier verifier
	faults   *fault.Set
	log      *slog.Logger

	mu    sync.RWMutex
	pools []Pool

	callsMu sync.Mutex
	calls   map[string]int
}

// Option configures a Server.
type Option func(*Server)

// WithKey makes the server accept a long-term access key. It may be given
// more than once.
func WithKey(accessKeyID, secret string) Option {
	return func(s *Server) { s.verifier.keys[accessKeyID] = key{secret: secret} }
}

// WithSTSToken makes the server accept a temporary access key, whose requests
// must carry token in X-Security-Token.
func WithSTSToken(accessKeyID, secret, token string) Option {
	return func(s *Server) { s.verifier.keys[accessKeyID] = key{secret: secret, token: token} }
}

// WithFaults injects the faults of set; the server asks it before every call
// of an action.
func WithFaults(set *fault.Set) Option {
	return func(s *Server) { s.faults = set }
}

// WithClock sets the clock X-Date is checked against.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.verifier.now = now }
}

// WithPools replaces the default pools with pools. New refuses pools that
// are not valid (see AddPools).
func WithPools(pools ...Pool) Option {
	return func(s *Server) { s.pools = clonePools(pools) }
}

// WithLogger sets the logger of one line per call; by default nothing is
// logged. No secret, token or signature is ever logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) { s.log = l }
}

// New returns a server with the default pools (DefaultPools) that accepts
// the default key pair unless WithKey or WithSTSToken gives keys. It
// refuses pools (WithPools) that AddPools would refuse.
func New(opts ...Option) (*Server, error) {
	s := &Server{
		verifier: verifier{
			service: "vms",
			regions: []string{"cn-beijing", "cn-north-1"},
			keys:    map[string]key{},
			now:     time.Now,
		},
		log:   slog.New(slog.DiscardHandler),
		pools: DefaultPools(),
		calls: map[string]int{},
	}
	for _, o := range opts {
		o(s)
	}
	if len(s.verifier.keys) == 0 {
		s.verifier.keys[DefaultAccessKeyID] = key{secret: DefaultSecretAccessKey}
	}
	if err := checkPools(nil, s.pools); err != nil {
		return nil, err
	}
	return s, nil
}

// AddPools adds pools while the server runs. It refuses, changing nothing,
// a pool without No or Name, a pool number or phone number that is already
// served or given twice, and types or codes outside VMS's enumerations.
func (s *Server) AddPools(pools ...Pool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkPools(s.pools, pools); err != nil {
		return err
	}
	s.pools = append(s.pools, clonePools(pools)...)
	return nil
}

// Pools returns a copy of the pools served.
func (s *Server) Pools() []Pool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return clonePools(s.pools)
}

// Calls returns how many calls of action were authenticated and reached the
// action, faulted ones included.
func (s *Server) Calls(action string) int {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	return s.calls[action]
}

// metadata is ResponseMetadata.
type metadata struct {
	RequestId string
	Action    string
	Version   string
	Service   string
	Region    string
	Error     *errorBody `json:",omitempty"`
}

type errorBody struct {
	CodeN   int `json:",omitempty"`
	Code    string
	Message string
}

type envelope struct {
	ResponseMetadata metadata
	Result           any `json:",omitempty"`
}

type action func(s *Server, p params) (any, *apiError)

var actions = map[string]action{
	"NumberPoolList": (*Server).numberPoolList,
	"NumberList":     (*Server).numberList,
}

// ServeHTTP answers one API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	meta := metadata{RequestId: newRequestID(time.Now()), Service: "vms"}
	query, qerr := url.ParseQuery(r.URL.RawQuery)
	meta.Action, meta.Version = query.Get("Action"), query.Get("Version")
	accessKeyID := ""
	fail := func(e *apiError) {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "vms call refused",
			slog.String("requestId", meta.RequestId), slog.String("action", meta.Action),
			slog.String("accessKeyId", accessKeyID), slog.String("code", e.code), slog.String("message", e.message))
		s.write(w, Status(e.code), envelope{ResponseMetadata: withError(meta, e)})
	}

	if qerr != nil {
		fail(newError("InvalidParameter", "query").because("the query string is malformed"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		fail(newError("MethodNotAllowed", r.Method))
		return
	}
	var body []byte
	var err error
	if r.Body != nil { // a server request always has one; a handler test's may not
		body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	}
	if err != nil {
		fail(newError("InvalidParameter", "body").because("the body could not be read"))
		return
	}
	if len(body) > maxBody {
		fail(newError("InvalidParameter", "body").because("the body is over 1 MiB"))
		return
	}

	auth, aerr := s.verifier.verify(r, body)
	meta.Region, accessKeyID = auth.region, auth.accessKeyID
	if aerr != nil {
		fail(aerr)
		return
	}

	if meta.Action == "" {
		fail(newError("MissingParameter", "Action"))
		return
	}
	if meta.Version == "" {
		fail(newError("MissingParameter", "Version"))
		return
	}
	act, ok := actions[meta.Action]
	if !ok || meta.Version != APIVersion {
		fail(newError("InvalidActionOrVersion", meta.Action, meta.Version))
		return
	}

	s.callsMu.Lock()
	s.calls[meta.Action]++
	s.callsMu.Unlock()

	var d fault.Decision
	if s.faults != nil {
		d = s.faults.Decide(meta.Action)
	}
	if d.Delay > 0 && !wait.For(r.Context(), d.Delay) {
		return // the client is gone; there is nobody to answer
	}
	switch {
	case d.Throttled:
		fail(newError("FlowLimitExceeded"))
		return
	case d.ErrorCode != "":
		fail(newError(d.ErrorCode).because("injected fault"))
		return
	}

	p, perr := parseParams(r.Method, r.Header.Get("Content-Type"), query, body)
	var result any
	if perr == nil {
		result, perr = act(s, p)
	}
	switch {
	case d.Cut:
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "vms call cut",
			slog.String("requestId", meta.RequestId), slog.String("action", meta.Action), slog.String("accessKeyId", accessKeyID))
		fault.Cut(w)
		return
	case d.Garble:
		fault.Garble(w)
		return
	case d.ErrorAfter != "" && perr == nil:
		perr = newError(d.ErrorAfter).because("injected fault after the work")
	}
	if perr != nil {
		fail(perr)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "vms call",
		slog.String("requestId", meta.RequestId), slog.String("action", meta.Action), slog.String("accessKeyId", accessKeyID))
	s.write(w, http.StatusOK, envelope{ResponseMetadata: meta, Result: result})
}

func withError(m metadata, e *apiError) metadata {
	m.Error = &errorBody{CodeN: codes[e.code].codeN, Code: e.code, Message: e.message}
	return m
}

func (s *Server) write(w http.ResponseWriter, status int, v envelope) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own types are encoded; this is a bug, not a client error.
		panic(fmt.Sprintf("vms: encoding an answer: %v", err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// newRequestID makes an id shaped like the gateway's: the time to the second
// and random hex.
func newRequestID(now time.Time) string {
	var b [9]byte
	rand.Read(b[:])
	return now.In(cn.Shanghai).Format("20060102150405") + strings.ToUpper(hex.EncodeToString(b[:]))
}

// page applies Offset and Limit (default 20, lowered to max) to n records.
func page(p params, max int) (offset, limit int, err *apiError) {
	offset, _, err = p.int("Offset", 0, maxInt32)
	if err != nil {
		return 0, 0, err
	}
	limit, _, err = p.int("Limit", 0, maxInt32)
	if err != nil {
		return 0, 0, err
	}
	if limit == 0 {
		limit = 20
	}
	return offset, min(limit, max), nil
}

func window(n, offset, limit int) (lo, hi int) {
	lo = min(offset, n)
	return lo, min(lo+limit, n)
}

// poolRecord is a record of NumberPoolList's Result.
type poolRecord struct {
	NumberPoolName     string
	NumberPoolNo       string
	ServiceType        int
	ServiceTypeName    string
	SubServiceType     int
	SubServiceTypeName string
	NumberCount        int
}

type poolResult struct {
	Total   int
	Limit   int
	Offset  int
	Records []poolRecord
}

func (s *Server) numberPoolList(p params) (any, *apiError) {
	no, _, err := p.string("NumberPoolNo")
	if err != nil {
		return nil, err
	}
	name, _, err := p.string("NumberPoolName")
	if err != nil {
		return nil, err
	}
	st, _, err := p.int("ServiceType", 0, maxInt32)
	if err != nil {
		return nil, err
	}
	if st != 0 && serviceTypeNames[st] == "" {
		return nil, newError("IllegalArgument", "ServiceType").because("ServiceType must be 100 or 200")
	}
	sub, _, err := p.int("SubServiceType", 0, maxInt32)
	if err != nil {
		return nil, err
	}
	if sub != 0 && subServiceTypeNames[sub] == "" {
		return nil, newError("IllegalArgument", "SubServiceType").because("SubServiceType is not a VMS sub-service type")
	}
	offset, limit, err := page(p, 100)
	if err != nil {
		return nil, err
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	var match []poolRecord
	for _, pl := range s.pools {
		if (no != "" && pl.No != no) || (name != "" && !strings.Contains(pl.Name, name)) ||
			(st != 0 && pl.ServiceType != st) || (sub != 0 && pl.SubServiceType != sub) {
			continue
		}
		match = append(match, poolRecord{
			NumberPoolName:     pl.Name,
			NumberPoolNo:       pl.No,
			ServiceType:        pl.ServiceType,
			ServiceTypeName:    serviceTypeNames[pl.ServiceType],
			SubServiceType:     pl.SubServiceType,
			SubServiceTypeName: subServiceTypeNames[pl.SubServiceType],
			NumberCount:        len(pl.Numbers),
		})
	}
	lo, hi := window(len(match), offset, limit)
	return poolResult{Total: len(match), Limit: limit, Offset: offset, Records: append([]poolRecord{}, match[lo:hi]...)}, nil
}

// numberRecord is a record of NumberList's Result.
type numberRecord struct {
	Number             string
	NumberLocation     string
	NumberPoolNo       string
	NumberPoolName     string
	NumberPoolTypeCode int
	NumberPoolTypeDesc string
	NumberStatusCode   int
	NumberStatusDesc   string
	NumberTypeCode     int
	NumberTypeDesc     string
	ServiceTypeCode    int
	ServiceTypeDesc    string
	QualificationNo    string `json:",omitempty"`
	CurrentBindCount   int
	NumberPurchaseTime string
}

type numberResult struct {
	Total   int
	Limit   int
	Offset  int
	Records []numberRecord
}

// maxNumbers is VMS's documented most numbers per NumberList query.
const maxNumbers = 500

func (s *Server) numberList(p params) (any, *apiError) {
	no, _, err := p.string("NumberPoolNo")
	if err != nil {
		return nil, err
	}
	list, _, err := p.list("NumberList")
	if err != nil {
		return nil, err
	}
	one, hasOne, err := p.string("Number")
	if err != nil {
		return nil, err
	}
	if hasOne {
		list = append(list, one)
	}
	if len(list) > maxNumbers {
		return nil, newError("InvalidParameter", "NumberList").because(fmt.Sprintf("at most %d numbers", maxNumbers))
	}
	var wanted map[string]bool
	if len(list) > 0 {
		wanted = make(map[string]bool, len(list))
		for _, n := range list {
			wanted[n] = true
		}
	}
	poolType, _, err := p.int("NumberPoolTypeCode", 0, maxInt32)
	if err != nil {
		return nil, err
	}
	if poolType != 0 && subServiceTypeNames[poolType] == "" {
		return nil, newError("IllegalArgument", "NumberPoolTypeCode").because("NumberPoolTypeCode is not a VMS sub-service type")
	}
	status, _, err := p.int("NumberStatusCode", 0, maxInt32)
	if err != nil {
		return nil, err
	}
	if status != 0 && numberStatusDescs[status] == "" {
		return nil, newError("IllegalArgument", "NumberStatusCode").because("NumberStatusCode must be 1, 2, 3 or 4")
	}
	typeCode, hasType, err := p.int("NumberTypeCode", 0, maxInt32)
	if err != nil {
		return nil, err
	}
	if hasType && numberTypeDescs[typeCode] == "" {
		return nil, newError("IllegalArgument", "NumberTypeCode").because("NumberTypeCode must be 0 or 1")
	}
	offset, limit, err := page(p, maxNumbers)
	if err != nil {
		return nil, err
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	var match []numberRecord
	for _, pl := range s.pools {
		if (no != "" && pl.No != no) || (poolType != 0 && pl.SubServiceType != poolType) {
			continue
		}
		for _, n := range pl.Numbers {
			if (wanted != nil && !wanted[n.Number]) || (status != 0 && n.StatusCode != status) || (hasType && n.TypeCode != typeCode) {
				continue
			}
			match = append(match, numberRecord{
				Number:             n.Number,
				NumberLocation:     n.Location,
				NumberPoolNo:       pl.No,
				NumberPoolName:     pl.Name,
				NumberPoolTypeCode: pl.SubServiceType,
				NumberPoolTypeDesc: subServiceTypeNames[pl.SubServiceType],
				NumberStatusCode:   n.StatusCode,
				NumberStatusDesc:   numberStatusDescs[n.StatusCode],
				NumberTypeCode:     n.TypeCode,
				NumberTypeDesc:     numberTypeDescs[n.TypeCode],
				ServiceTypeCode:    pl.ServiceType,
				ServiceTypeDesc:    serviceTypeNames[pl.ServiceType],
				QualificationNo:    n.QualificationNo,
				CurrentBindCount:   n.BindCount,
				NumberPurchaseTime: purchaseTime(n.PurchaseTime),
			})
		}
	}
	lo, hi := window(len(match), offset, limit)
	return numberResult{Total: len(match), Limit: limit, Offset: offset, Records: append([]numberRecord{}, match[lo:hi]...)}, nil
}

func purchaseTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(cn.Shanghai).Format(cn.TimeLayout)
}
