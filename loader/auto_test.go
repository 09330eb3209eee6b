package loader

import (
	"testing"

	"github.com/cgpeak/cgpeak/internal/kernel"
)

// What auto tries first per preemption model, as measured with four
// processes at once (docs/tracer.md): fentry lost a quarter of the charge
// requests on the lazy 7.3 and nothing on the voluntary 6.1.
func TestAutoOrder(t *testing.T) {
	for model, want := range map[string]string{
		kernel.PreemptVoluntary: Fentry, kernel.PreemptNone: Fentry, "": Fentry,
		kernel.PreemptLazy: Kprobe, kernel.PreemptFull: Kprobe, kernel.PreemptRT: Kprobe,
	} {
		order := autoOrder(model, "test")
		if len(order) != len(backends) {
			t.Fatalf("%q: order %v leaves out backends", model, order)
		}
		if got := backends[order[0]].name; got != want {
			t.Errorf("preemption %q: auto tries %s first, want %s", model, got, want)
		}
	}
}
