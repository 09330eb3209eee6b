package kernel

import (
	"strings"
	"testing"
)

// The preemption options of Debian's kernels' configs (bullseye 5.10,
// bookworm 6.1 and trixie 6.12: voluntary, the last two dynamic;
// trixie-backports 7.3: lazy) give the model each boots with.
func TestConfigModel(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{"CONFIG_PREEMPT_VOLUNTARY_BUILD=y\nCONFIG_PREEMPT_VOLUNTARY=y\n# CONFIG_PREEMPT is not set\nCONFIG_PREEMPT_NOTIFIERS=y\n", PreemptVoluntary},
		{"CONFIG_PREEMPT_BUILD=y\n# CONFIG_PREEMPT_NONE is not set\nCONFIG_PREEMPT_VOLUNTARY=y\n# CONFIG_PREEMPT is not set\nCONFIG_PREEMPT_COUNT=y\nCONFIG_PREEMPTION=y\nCONFIG_PREEMPT_DYNAMIC=y\n", PreemptVoluntary},
		{"CONFIG_PREEMPT_BUILD=y\n# CONFIG_PREEMPT is not set\nCONFIG_PREEMPT_LAZY=y\n# CONFIG_PREEMPT_RT is not set\nCONFIG_PREEMPT_COUNT=y\nCONFIG_PREEMPTION=y\nCONFIG_PREEMPT_DYNAMIC=y\n", PreemptLazy},
		{"CONFIG_PREEMPT=y\nCONFIG_PREEMPT_RT=y\n", PreemptRT},
		{"CONFIG_PREEMPT=y\n", PreemptFull},
		{"# CONFIG_PREEMPT is not set\n", ""},
	} {
		cfg, err := parseConfig(strings.NewReader(c.config))
		if err != nil {
			t.Fatal(err)
		}
		if got := configModel(cfg); got != c.want {
			t.Errorf("%q: model %q, want %q", c.config, got, c.want)
		}
	}
}
