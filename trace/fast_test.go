package trace

import (
	"encoding/json"
	"testing"
)

// Whatever the fast decoder accepts, encoding/json decodes to the same event.
func FuzzFastEventAgreesWithJSON(f *testing.F) {
	for _, s := range []string{
		`{"t":11148427553,"cpu":1,"pid":153,"tid":153,"comm":"7","op":"counter_charge","fn":"page_counter_try_charge","counter":"memory","pages":64,"usage":64,"watermark":64}`,
		`{"t":1,"cpu":0,"pid":2,"tid":2,"comm":"touch pages","op":"charge","fn":"try_charge_memcg","pages":1,"failed":true}`,
		`{"t":1,"op":"counter_charge","pages":3,"forced":true,"usage":9,"watermark":9}`,
		`{"t":2,"op":"refill_stock","pages":60,"usage":64,"watermark":64,"stocked":60,"real":4,"consumed":3}`, `{"t":3,"op":"charge","pages":1,"kind":"anon","ustack":7,"kstack":18446744073709551615}`, `{"real":-2}`, `{"real":9223372036854775808}`,
		` { "t" : 5 , "op" : "drain_stock" } `,
		`{"T":5,"op":"charge"}`,
		`{"t":-1}`, `{"t":1.5}`, `{"comm":"a\"b"}`, `{"type":"end"}`, `{}`, `{"pages":"1"}`, `{"forced":1}`,
		`{"t":7,"cpu":1,"from_cpu":0,"op":"charge","pages":1}`, `{"from_cpu":70000}`,
		`{"t":01}`, `{"t":1,}`, `{"t":1}x`, `{"extra":[1,2]}`, `{"cpu":99999999999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Event
		if !fastEvent(b, &fast) {
			return
		}
		var slow Event
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast decoder accepted %q, encoding/json: %v", b, err)
		}
		if !sameEvent(fast, slow) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", b, fast, slow)
		}
	})
}

// sameEvent compares two events by value, FromCPU by what it points at.
func sameEvent(a, b Event) bool {
	if (a.FromCPU == nil) != (b.FromCPU == nil) || a.FromCPU != nil && *a.FromCPU != *b.FromCPU {
		return false
	}
	a.FromCPU, b.FromCPU = nil, nil
	return a == b
}
