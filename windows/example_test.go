package windows_test

import (
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/windows"
)

func ExampleSpec_Assign() {
	spec := windows.Spec{Kind: windows.Hopping, Size: 10 * time.Millisecond, Advance: 5 * time.Millisecond}
	if err := spec.Validate(); err != nil {
		panic(err)
	}
	fmt.Println(spec.Assign(7), spec.Assign(-1))
	// Output: [[0,10) [5,15)] [[-10,0) [-5,5)]
}

func ExampleSpec_MergeSession() {
	spec := windows.Spec{Kind: windows.Session, Gap: 10 * time.Millisecond}
	open := []windows.Window{{Start: 0, End: 19}, {Start: 19, End: 29}}
	merged, absorbed := spec.MergeSession(nil, open, 14)
	fmt.Println(merged, absorbed)
	// Output: [0,29) [[0,19) [19,29)]
}

func ExampleWatermark() {
	spec := windows.Spec{Kind: windows.Tumbling, Size: time.Minute, Grace: 10 * time.Second}
	wm := windows.NewWatermark(5 * time.Second)
	w := spec.Assign(0)[0] // [0,60000)
	for _, t := range []int64{30_000, 74_000, 75_000} {
		wm.Observe(t)
		fmt.Println(wm.Current(), spec.Closed(w, wm.Current()), spec.LateEvent(59_999, wm.Current()))
	}
	// Output:
	// 25000 false false
	// 69000 false false
	// 70000 true true
}

func ExampleAggregator() {
	agg, err := windows.NewAggregator([]windows.Def{
		{Name: "orders", Func: "count"},
		{Name: "revenue", Func: "sum"},
		{Name: "biggest", Func: "max"},
		{Name: "last_item", Func: "last"},
	})
	if err != nil {
		panic(err)
	}
	acc := agg.NewAcc()
	_ = acc.Add([]any{nil, int64(30), int64(30), "pen"}, 1000)
	_ = acc.Add([]any{nil, 12.5, 12.5, "ink"}, 900)
	err = acc.Add([]any{nil, "oops", int64(1), "cap"}, 1100)
	fmt.Println(err)

	state := acc.AppendBinary(nil) // what the runtime stores
	acc, _ = agg.Decode(state)
	fmt.Println(acc.Result())
	fmt.Printf("{%s}\n", acc.AppendJSONFields(nil))
	// Output:
	// windows: aggregate "revenue" (sum): unsupported value type: sum needs a number, got string
	// [2 42.5 30 pen]
	// {"orders":2,"revenue":42.5,"biggest":30,"last_item":"pen"}
}
