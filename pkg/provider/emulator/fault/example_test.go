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
		fmt.Printf("%s: %+v\n", action, f)
	}
	// Output:
	// BuySecretNo: {Latency:0s ErrorCode: ErrorRate:0 QPS:5 Burst:0 CutRate:0}
	// BuySecretNo: {Latency:0s ErrorCode:isv.SYSTEM_ERROR ErrorRate:0.1 QPS:0 Burst:0 CutRate:0}
	// NumberPoolList: {Latency:20ms ErrorCode: ErrorRate:0 QPS:0 Burst:0 CutRate:0.05}
	// refused: fault "BuySecretNo:rate=2": rate: 2 is not a fraction between 0 and 1
}

// An emulator asks its Set before each call; a test may change the faults
// while calls are served.
func ExampleSet() {
	set := fault.NewSet(1)
	set.Set("QuerySecretNoRemain", fault.Fault{ErrorCode: "isp.SYSTEM_ERROR"})
	fmt.Printf("%+v\n", set.Decide("QuerySecretNoRemain"))
	fmt.Printf("%+v\n", set.Decide("BuySecretNo"))
	set.Set("QuerySecretNoRemain", fault.Fault{})
	fmt.Printf("%+v\n", set.Decide("QuerySecretNoRemain"))
	// Output:
	// {Delay:0s Throttled:false ErrorCode:isp.SYSTEM_ERROR Cut:false}
	// {Delay:0s Throttled:false ErrorCode: Cut:false}
	// {Delay:0s Throttled:false ErrorCode: Cut:false}
}
