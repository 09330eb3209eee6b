# The tracing benchmark, run inside a VM by `make bench`: each workload
# untraced and traced with each backend (every charge recorded), in
# alternation, best of REPS wall times each, so the ratios compare runs of one
# boot on one machine.
REPS=${REPS:-3}
num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -1; }
best() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | head -1; }

bench() { # name rounds pages
	name=$1 rounds=$2 pages=$3
	plain="" fentry="" kprobe="" fe=0 ke=0 fl=0 kl=0
	for i in $(seq 1 "$REPS"); do
		TOUCH_ROUNDS=$rounds cgpeak run --json --output /tmp/p.json -- taskset -c 0 touchpages "$pages" || exit 1
		plain="$plain $(num wall_seconds /tmp/p.json)"
		for b in fentry kprobe; do
			TOUCH_ROUNDS=$rounds cgpeak run --trace --backend $b --json --output /tmp/t.json -- taskset -c 0 touchpages "$pages" || exit 1
			w=$(num wall_seconds /tmp/t.json) e=$(num events /tmp/t.json) l=$(num lost_events /tmp/t.json)
			if [ $b = fentry ]; then fentry="$fentry $w" fe=$e fl=$((fl + l)); else kprobe="$kprobe $w" ke=$e kl=$((kl + l)); fi
		done
	done
	p=$(best $plain)
	for b in fentry kprobe; do
		if [ $b = fentry ]; then t=$(best $fentry) e=$fe l=$fl; else t=$(best $kprobe) e=$ke l=$kl; fi
		awk -v n="$name" -v p="$p" -v t="$t" -v e="$e" -v l="$l" -v b="$b" -v k="$(uname -r)" 'BEGIN {
			printf "bench: %-26s %-24s %-6s untraced %6.3f s  traced %6.3f s  ratio %.2f  %7d events  %6.0f events/s  lost %d\n", n, k, b, p, t, t/p, e, e/t, l }'
	done
}

bench "touch 1 GiB (262144 pages)" 1 262144
bench "churn 64 x 16 MiB" 64 4096
