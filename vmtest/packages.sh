#!/bin/sh
# Runs inside a VM: each package's test binary in its own package
# directory, one after another in the same boot, printing what `go test -v`
# prints for it (its output, then "ok" or "FAIL" with the package and time),
# so that one boot serves every package of a kernel and cgroup mode.
#   packages.sh IMPORTPATH=/src/DIR/NAME.test ... -- TEST FLAGS
status=0
tests=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	tests="$tests $1"
	shift
done
[ "${1:-}" = -- ] && shift
for t in $tests; do
	pkg=${t%%=*} bin=${t#*=}
	cd "$(dirname "$bin")" || { echo "FAIL	$pkg	[no directory]"; status=1; continue; }
	start=$(date +%s)
	"$bin" -test.v=true -test.count=1 "$@"
	rc=$?
	took=$(($(date +%s) - start))
	if [ $rc -eq 0 ]; then
		echo "ok  	$pkg	${took}s"
	else
		echo "FAIL	$pkg	${took}s"
		status=1
	fi
done
exit $status
