#!/usr/bin/env bash
# The host suite N times in a row, as `make hosttest` runs it (go test's
# packages in parallel unless GOFLAGS or P say otherwise), then every test
# that failed even once, with the runs it failed in and their logs: a flaky
# test shows here before it turns a submission away.
#   vmtest/repeat.sh N [P] [PKG...]     P: go test -p (default: go's own)
set -uo pipefail
n=${1:-10}
p=${2:-}
shift 2 2>/dev/null || shift $#
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
dir=$(mktemp -d /tmp/cgpeak-repeat-XXXXXX)
fails=$dir/fails
: >"$fails"
for i in $(seq 1 "$n"); do
	log=$dir/run$i.log
	start=$SECONDS
	go test -count=1 -v ${p:+-p "$p"} "${pkgs[@]}" >"$log" 2>&1
	rc=$?
	# A test's own failure, or a package that failed without one (a panic,
	# a build error, a timeout).
	grep -E '^\s*--- FAIL' "$log" | awk -v i="$i" '{ sub(":", "", $3); print $3, i }' >>"$fails"
	grep -E '^FAIL\s+\S+' "$log" | awk -v i="$i" '{ print "package:" $2, i }' >>"$fails"
	f=$(grep -cE '^\s*--- FAIL' "$log")
	echo "repeat: run $i of $n${p:+ (-p $p)}: exit $rc, $(grep -cE '^\s*--- PASS' "$log") passed, $f failed, $((SECONDS - start)) s; log $log"
done
if [ ! -s "$fails" ]; then
	echo "repeat: $n runs, no test failed; logs in $dir"
	exit 0
fi
echo "repeat: tests that failed in any of $n runs (name: runs; logs in $dir):"
sort -k1,1 -k2,2n "$fails" | awk '{ r[$1] = r[$1] (r[$1] ? " " : "") $2; c[$1]++ } END { for (t in r) printf "  %s: %d of '"$n"' (run %s)\n", t, c[t], r[t] }' | sort
exit 1
