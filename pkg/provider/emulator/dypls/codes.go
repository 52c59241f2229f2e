package dypls

import (
	"net/http"
	"strings"
)

// gatewayCode is how the cloud's API gateway (POP) answers one of its codes:
// a non-2xx status and a JSON or XML error document.
type gatewayCode struct {
	status  int
	message string
}

// gatewayCodes is the one table of the gateway's codes this emulator speaks:
// the ones it raises itself and the ones a fault may inject. Statuses are the
// cloud's, from its public error center.
var gatewayCodes = map[string]gatewayCode{
	"MissingParameter":                           {http.StatusBadRequest, "The input parameter that is mandatory for processing this request is not supplied."},
	"InvalidParameter":                           {http.StatusBadRequest, "The specified parameter is not valid."},
	"InvalidParameter.Format":                    {http.StatusBadRequest, "Specified parameter Format is not valid."},
	"IncompleteSignature":                        {http.StatusBadRequest, "The request signature does not conform to Aliyun standards."},
	"SignatureDoesNotMatch":                      {http.StatusBadRequest, "Specified signature is not matched with our calculation."},
	"SignatureNonceUsed":                         {http.StatusBadRequest, "Specified signature nonce was used already."},
	"InvalidSignatureMethod":                     {http.StatusBadRequest, "Specified signature method is not supported."},
	"InvalidTimeStamp.Format":                    {http.StatusBadRequest, "Specified time stamp or date value is not well formatted."},
	"InvalidTimeStamp.Expired":                   {http.StatusBadRequest, "Specified time stamp or date value is expired."},
	"InvalidAccessKeyId.NotFound":                {http.StatusNotFound, "Specified access key is not found."},
	"InvalidAccessKeyId.Inactive":                {http.StatusBadRequest, "Specified access key is disabled."},
	"Forbidden.AccessKeyDisabled":                {http.StatusForbidden, "The Access Key is disabled."},
	"MissingSecurityToken":                       {http.StatusBadRequest, "SecurityToken is mandatory for this action."},
	"InvalidSecurityToken.Expired":               {http.StatusBadRequest, "Specified SecurityToken is expired."},
	"InvalidSecurityToken.Malformed":             {http.StatusBadRequest, "Specified SecurityToken is malformed."},
	"InvalidSecurityToken.MismatchWithAccessKey": {http.StatusBadRequest, "Specified SecurityToken mismatch with the AccessKey."},
	"Forbidden.RAM":                              {http.StatusForbidden, "User not authorized to operate on the specified resource, or this API doesn't support RAM."},
	"Forbidden":                                  {http.StatusForbidden, "User not authorized to operate on the specified resource."},
	"InvalidApi.NotFound":                        {http.StatusNotFound, "Specified api is not found, please check your url and method."},
	"UnsupportedHTTPMethod":                      {http.StatusForbidden, "This http method is not supported."},
	"InvalidProtocol.NeedSsl":                    {http.StatusBadRequest, "Your request is denied as lack of ssl protect."},
	"Throttling":                                 {http.StatusBadRequest, "Request was denied due to request throttling."},
	"Throttling.User":                            {http.StatusBadRequest, "Request was denied due to user flow control."},
	"Throttling.Api":                             {http.StatusBadRequest, "Request was denied due to api flow control."},
	"FlowLimited":                                {http.StatusBadRequest, "The operation is denied due to flow control."},
	"InternalError":                              {http.StatusInternalServerError, "The request processing has failed due to some unknown error, exception or failure."},
	"UnknownError":                               {http.StatusInternalServerError, "The request processing has failed due to some unknown error."},
	"ServiceUnavailable":                         {http.StatusServiceUnavailable, "The request has failed due to a temporary failure of the server."},
	"ServiceTimeout":                             {http.StatusGatewayTimeout, "The request has timed out on the server."},
}

// businessMessages are the product's own codes, answered with HTTP 200 and
// Code != "OK" (the Dyplsapi error list, document 109196).
var businessMessages = map[string]string{
	"isp.RAM_PERMISSION_DENY":   "RAM权限DENY",
	"isv.OUT_OF_SERVICE":        "业务停机",
	"isv.PRODUCT_UN_SUBSCRIPT":  "未开通云通信产品的阿里云客户",
	"isv.PRODUCT_UNSUBSCRIBE":   "产品未开通",
	"isv.ACCOUNT_NOT_EXISTS":    "账户不存在",
	"isv.ACCOUNT_ABNORMAL":      "账户异常",
	"isp.SYSTEM_ERROR":          "系统错误",
	"isp.UNKNOWN_ERR_CODE":      "运营商未知错误",
	"isv.PARTNER_NOT_EXIST":     "未知合作伙伴",
	"isv.NO_NOT_EXIST":          "号码不存在",
	"isv.ILLEGAL_ARGUMENT":      "参数非法",
	"isp.DAO_EXCEPTION":         "数据库异常",
	"isv.NO_AVAILABLE_NUMBER":   "无可用号码",
	"isp.VENDOR_UNAVAILABLE":    "运营商降级",
	"isv.FLOW_LIMIT":            "业务流控",
	"isv.PARTNER_IS_CLOSED":     "partner被关停",
	"isv.FORBIDDEN_ACTION":      "无权操作",
	"isv.NO_USED_BY_OTHERS":     "号码被其他业务方占用",
	"isv.VENDOR_BIND_FAILED":    "运营商绑定失败",
	"isv.EXPIRE_DATE_ILLEGAL":   "过期时间非法",
	"isv.MOBILE_NUMBER_ILLEGAL": "号码格式非法",
	"isv.BIND_CONFLICT":         "绑定冲突",
	"isv.SUBS_NOT_EXIST":        "绑定关系不存在",
	"isv.BUY_NUM_OVER_LIMIT":    "号码购买量超过限制",
	"isv.POOLKEY_NOT_EXISTS":    "号池不存在",
	"isp.GATEWAY_ERROR":         "调用发送应用模块失败",
	"isv.INVALID_PARAMETERS":    "参数格式不正确",
	"isv.UPDATE_CONFLICT":       "更新绑定关系冲突",
}

// ThrottlingCode is what a call over a fault's QPS limit is answered with.
const ThrottlingCode = "Throttling.User"

// StatusOf returns the HTTP status the emulator answers code with: 200 for
// the product's business codes (isv.*, isp.*), the gateway's status for its
// codes (Missing{Param} is 400), and 400 for any other code.
func StatusOf(code string) int {
	if isBusiness(code) {
		return http.StatusOK
	}
	if g, ok := gatewayCodes[code]; ok {
		return g.status
	}
	return http.StatusBadRequest
}

func isBusiness(code string) bool {
	return strings.HasPrefix(code, "isv.") || strings.HasPrefix(code, "isp.")
}

// apiError is a refusal in either layer.
type apiError struct {
	status  int // 200 for a business error
	code    string
	message string
}

func codeError(code string) *apiError {
	if isBusiness(code) {
		msg, ok := businessMessages[code]
		if !ok {
			msg = code
		}
		return &apiError{status: http.StatusOK, code: code, message: msg}
	}
	if g, ok := gatewayCodes[code]; ok {
		return &apiError{status: g.status, code: code, message: g.message}
	}
	return &apiError{status: http.StatusBadRequest, code: code, message: "The request was refused with " + code + "."}
}

func codeErrorf(code, message string) *apiError {
	e := codeError(code)
	e.message = message
	return e
}

// missing is the gateway's answer to an absent required parameter.
func missing(param string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "Missing" + param, message: param + " is mandatory for this action."}
}

func invalidParameters(message string) *apiError {
	return codeErrorf("isv.INVALID_PARAMETERS", message)
}
