package provider_test

import (
	"errors"
	"fmt"

	"github.com/xnum-dev/xnum/pkg/provider"
)

// A client maps each cloud's code once, onto a Kind; callers decide with
// errors.Is, Retryable and HTTPStatus, whichever cloud answered.
func ExampleKindOf() {
	err := fmt.Errorf("order o-1: %w", &provider.Error{
		Kind: provider.ErrThrottled, Provider: "aliyun", Op: "BuySecretNo",
		Code: "Throttling.User", Message: "Request was denied due to user flow control.", RequestID: "8906582E-6722",
	})
	fmt.Println(provider.KindOf(err), errors.Is(err, provider.ErrThrottled), provider.Retryable(err), provider.HTTPStatus(err))
	fmt.Println(err)
	// Output:
	// Throttled true true 429
	// order o-1: aliyun BuySecretNo: Request was denied due to user flow control. (Throttling.User, request 8906582E-6722)
}

// A buy whose outcome is unknown is never retried: it may have spent money.
func ExampleKind_Retryable() {
	for _, k := range []provider.Kind{provider.ErrThrottled, provider.ErrUnavailable, provider.ErrInDoubt, provider.ErrInvalidParameter} {
		fmt.Printf("%s: retry %v, HTTP %d\n", k, k.Retryable(), k.HTTPStatus())
	}
	// Output:
	// Throttled: retry true, HTTP 429
	// Unavailable: retry true, HTTP 503
	// InDoubt: retry false, HTTP 504
	// InvalidParameter: retry false, HTTP 400
}

// Validation errors name the field at fault.
func ExampleRemainQuery_Validate() {
	err := provider.RemainQuery{City: "杭州", SpecID: 3}.Validate()
	var pe *provider.Error
	if errors.As(err, &pe) {
		fmt.Println(pe.Kind, pe.Field, pe.Message)
	}
	// Output: InvalidParameter city specId 3 (95 numbers) needs city 全国通用
}

// A package's sentinel is a plain error that importers cannot change
// (trigger.ErrNoEvents); the *Error that carries it is made for each
// failure, with the kind callers decide on.
func ExampleError_sentinel() {
	errNoEvents := errors.New("the function takes no events")
	err := &provider.Error{Kind: provider.ErrInvalidParameter, Message: "function remain takes no events; call its HTTP routes", Err: errNoEvents}
	fmt.Println(errors.Is(err, errNoEvents), provider.KindOf(err), provider.HTTPStatus(err))
	// Output: true InvalidParameter 400
}
