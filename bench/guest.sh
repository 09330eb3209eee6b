# The tracing benchmark, run inside a VM by `make bench`: each workload
# untraced, then traced with each backend in summary mode (--trace) and in
# per-charge mode (--trace-charges), in alternation, best of REPS wall times
# each, so the ratios compare runs of one boot on one machine.
REPS=${REPS:-3}
num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -1; }
best() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | head -1; }
CONFIGS="fentry:summary fentry:charges kprobe:summary kprobe:charges"

bench() { # name rounds pages
	name=$1 rounds=$2 pages=$3 plain=""
	for c in $CONFIGS; do eval "w_${c%%:*}_${c##*:}=''; e_${c%%:*}_${c##*:}=0; l_${c%%:*}_${c##*:}=0"; done
	for i in $(seq 1 "$REPS"); do
		TOUCH_ROUNDS=$rounds cgpeak run --json --output /tmp/p.json -- taskset -c 0 touchpages "$pages" || exit 1
		plain="$plain $(num wall_seconds /tmp/p.json)"
		for c in $CONFIGS; do
			b=${c%%:*} m=${c##*:} flag=--trace
			[ "$m" = charges ] && flag=--trace-charges
			TOUCH_ROUNDS=$rounds cgpeak run $flag --backend "$b" --json --output /tmp/t.json -- taskset -c 0 touchpages "$pages" || exit 1
			eval "w_${b}_${m}=\"\$w_${b}_${m} $(num wall_seconds /tmp/t.json)\"; e_${b}_${m}=$(num events /tmp/t.json); l_${b}_${m}=\$((l_${b}_${m} + $(num lost_events /tmp/t.json)))"
		done
	done
	p=$(best $plain)
	for c in $CONFIGS; do
		b=${c%%:*} m=${c##*:}
		eval "t=\$(best \$w_${b}_${m}); e=\$e_${b}_${m}; l=\$l_${b}_${m}"
		awk -v n="$name" -v p="$p" -v t="$t" -v e="$e" -v l="$l" -v b="$b" -v m="$m" -v k="$(uname -r)" 'BEGIN {
			printf "| %s | %s | %s %s | %.3f s | %.3f s | %.2f | %d | %.0f | %d |\n", n, k, b, m, p, t, t/p, e, e/t, l }'
	done
}

echo "| workload | kernel | backend, mode | untraced | traced | ratio | events | events/s | lost |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
bench "touch 1 GiB (262144 pages)" 1 262144
bench "churn 64 x 16 MiB" 64 4096
