package fault_test

import (
	"fmt"

	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

// A fault spec, as `xnum emulator --fault` and `xnum dev --fault` take it,
// names a cloud action and what its calls meet.
func ExampleParse() {
	for _, spec := range []string{"BuySecretNo:qps=5", "BuySecretNo:error=isv.SYSTEM_ERROR,rate=0.1", "NumberPoolList:latency=20ms,cut=0.05", "BuySecretNo:rate=2"} {
		action, f, err := fault.Parse(spec)
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Printf("%s: qps %g, error %q at rate %g, latency %v, cut %g\n", action, f.QPS, f.ErrorCode, f.ErrorRate, f.Latency, f.CutRate)
	}
	// Output:
	// BuySecretNo: qps 5, error "" at rate 0, latency 0s, cut 0
	// BuySecretNo: qps 0, error "isv.SYSTEM_ERROR" at rate 0.1, latency 0s, cut 0
	// NumberPoolList: qps 0, error "" at rate 0, latency 20ms, cut 0.05
	// refused: fault "BuySecretNo:rate=2": rate: 2 is not a fraction between 0 and 1
}

// An emulator asks its Set before each call; a test may change the faults
// while calls are served.
func ExampleSet() {
	set := fault.NewSet(1)
	set.Set("QuerySecretNoRemain", fault.Fault{ErrorCode: "isp.SYSTEM_ERROR"})
	fmt.Printf("%q\n", set.Decide("QuerySecretNoRemain").ErrorCode)
	fmt.Printf("%q\n", set.Decide("BuySecretNo").ErrorCode)
	set.Set("QuerySecretNoRemain", fault.Fault{})
	fmt.Printf("%q\n", set.Decide("QuerySecretNoRemain").ErrorCode)
	// Output:
	// "isp.SYSTEM_ERROR"
	// ""
	// ""
}
