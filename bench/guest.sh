# The tracing benchmark, run inside a VM by `make bench`: each workload
# untraced, then traced with each backend in summary mode (--trace) and in
# per-charge mode (--trace-charges), in alternation, best of REPS wall times
# each, so the ratios compare runs of one boot on one machine. Then one more
# traced run of each with kernel.bpf_stats_enabled, whose count of the
# programs' runs and time in the kernel is the tracer's own cost, free of the
# noise of wall times (stats are off in the timed runs: counting costs too).
REPS=${REPS:-5}
num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -1; }
best() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | head -1; }
CONFIGS=${CONFIGS:-"fentry:summary fentry:charges kprobe:summary kprobe:charges"}

traced() { # backend mode rounds pages
	flag=--trace
	[ "$2" = charges ] && flag=--trace-charges
	TOUCH_ROUNDS=$3 cgpeak run $flag --backend "$1" --json --output /tmp/t.json -- taskset -c 0 touchpages "$4" || exit 1
}

bench() { # name rounds pages
	name=$1 rounds=$2 pages=$3 plain=""
	for c in $CONFIGS; do eval "w_${c%%:*}_${c##*:}=''; e_${c%%:*}_${c##*:}=0; l_${c%%:*}_${c##*:}=0"; done
	for i in $(seq 1 "$REPS"); do
		TOUCH_ROUNDS=$rounds cgpeak run --json --output /tmp/p.json -- taskset -c 0 touchpages "$pages" || exit 1
		plain="$plain $(num wall_seconds /tmp/p.json)"
		for c in $CONFIGS; do
			b=${c%%:*} m=${c##*:}
			traced "$b" "$m" "$rounds" "$pages"
			eval "w_${b}_${m}=\"\$w_${b}_${m} $(num wall_seconds /tmp/t.json)\"; e_${b}_${m}=$(num events /tmp/t.json); l_${b}_${m}=\$((l_${b}_${m} + $(num lost_events /tmp/t.json)))"
		done
	done
	p=$(best $plain)
	echo 1 > /proc/sys/kernel/bpf_stats_enabled
	for c in $CONFIGS; do
		b=${c%%:*} m=${c##*:}
		traced "$b" "$m" "$rounds" "$pages"
		runs=$(num program_runs /tmp/t.json) secs=$(num program_seconds /tmp/t.json)
		eval "t=\$(best \$w_${b}_${m}); e=\$e_${b}_${m}; l=\$l_${b}_${m}"
		awk -v n="$name" -v p="$p" -v t="$t" -v e="$e" -v l="$l" -v b="$b" -v m="$m" -v k="$(uname -r)" \
			-v runs="${runs:-0}" -v secs="${secs:-0}" -v pages="$((pages * rounds))" 'BEGIN {
			printf "| %s | %s | %s %s | %.3f s | %.3f s | %.2f | %d | %.0f | %d | %.3f | %.0f | %.1f%% |\n", n, k, b, m, p, t, t/p, e, e/t, l, runs/pages, secs*1e9/pages, 100*secs/p }'
	done
	echo 0 > /proc/sys/kernel/bpf_stats_enabled
}

# PARTS=concurrent runs only the concurrent workloads below.
if [ "${PARTS:-all}" = all ]; then
	echo "| workload | kernel | backend, mode | untraced | traced | ratio | events | events/s | lost | program runs/page | program ns/page | program time/untraced |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	bench "touch 1 GiB (262144 pages)" 1 262144
	bench "churn 64 x 16 MiB" 64 4096
fi

# Concurrent workloads: P processes touching 50 MiB each at the same time,
# unpinned, traced with each backend and mode, CREPS times each: how many
# runs were exact, the calls the kernel counted as missed (all runs summed),
# the replay's resyncs (summed), the events lost to a full ring buffer, and
# the widest error bound printed, beside one batch per CPU.
CREPS=${CREPS:-3}
echo
echo "| workload | kernel | backend, mode | exact runs | missed calls (kernel-counted) | resyncs | lost events | widest bound | batch x CPUs |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for procs in 4; do
	for c in $CONFIGS; do
		b=${c%%:*} m=${c##*:} flag=--trace exact=0 missed="" lost=0 bound=0 resyncs=0
		[ "$m" = charges ] && flag=--trace-charges
		for i in $(seq 1 "$CREPS"); do
			TOUCH_PROCS=$procs cgpeak run $flag --backend "$b" --json --output /tmp/c.json -- touchpages 12800 || exit 1
			grep -q '"exact": true' /tmp/c.json && exact=$((exact + 1))
			missed="$missed $(tr -d '\n' < /tmp/c.json | sed -n 's/.*"missed_calls": *{\([^}]*\)}.*/\1/p' | tr -d ' "')"
			lost=$((lost + $(num lost_events /tmp/c.json)))
			resyncs=$((resyncs + $(num resyncs /tmp/c.json)))
			batch=$(num batch_pages /tmp/c.json)
			e=$(num corrected_peak_error_bytes /tmp/c.json)
			[ "${e:-0}" -gt "$bound" ] && bound=$e
		done
		# Sum the per-function counts of all runs.
		sums=$(echo "$missed" | tr ' ,' '\n\n' | sed '/^$/d' | awk -F: '{ s[$1] += $2 } END { for (f in s) printf "%s %d, ", f, s[f] }' | sed 's/, $//')
		printf "| %d x 50 MiB at once | %s | %s %s | %d of %d | %s | %d | %d | %d KiB | %d KiB |\n" "$procs" "$(uname -r)" "$b" "$m" "$exact" "$CREPS" "${sums:-0}" "$resyncs" "$lost" $((bound / 1024)) $((batch * $(nproc) * 4)) # 4 KiB pages (x86)
	done
done
