# The tracing benchmark, run inside a VM by `make bench`: each workload
# untraced and traced (every charge recorded) in alternation, best of REPS
# wall times each, so the ratio compares runs of one boot on one machine.
REPS=${REPS:-3}
num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -1; }
str() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$2" | head -1; }
best() { echo "$@" | tr ' ' '\n' | sort -g | head -1; }

bench() { # name rounds pages
	name=$1 rounds=$2 pages=$3
	plain="" traced="" events=0 lost=0 backend=""
	for i in $(seq 1 "$REPS"); do
		TOUCH_ROUNDS=$rounds cgpeak run --json --output /tmp/p.json -- taskset -c 0 touchpages "$pages" || exit 1
		plain="$plain $(num wall_seconds /tmp/p.json)"
		TOUCH_ROUNDS=$rounds cgpeak run --trace --json --output /tmp/t.json -- taskset -c 0 touchpages "$pages" || exit 1
		traced="$traced $(num wall_seconds /tmp/t.json)"
		events=$(num events /tmp/t.json) lost=$((lost + $(num lost_events /tmp/t.json)))
		backend=$(str backend /tmp/t.json)
	done
	p=$(best $plain) t=$(best $traced)
	awk -v n="$name" -v p="$p" -v t="$t" -v e="$events" -v l="$lost" -v b="$backend" -v k="$(uname -r)" 'BEGIN {
		printf "bench: %-28s %-26s %-7s untraced %7.3f s  traced %7.3f s  ratio %.2f  %9d events  %10.0f events/s  lost %d\n", n, k, b, p, t, t/p, e, e/t, l }'
}

bench "touch 1 GiB (262144 pages)" 1 262144
bench "churn 64 x 16 MiB" 64 4096
