SHELL := /bin/bash
GO ?= go

.PHONY: help build test test-repeat vmtests bench-scale kernel-table hosttest bench-host bench-hyperfine vmtest vmtest-all vmtest-systemd guest lint generate check-generated bench bench-explain

# The VM suite: kernels by Debian suite (or a vmlinuz path), guest cgroup
# modes, and the packages whose tests need a real kernel.
KERNELS ?= bullseye bookworm trixie trixie-backports
KERNEL ?= bookworm
MODES ?= v2 v1
# VMs run at once by the VM suite: one per core of a 2-core machine.
JOBS ?= 2
VMPKGS ?= ./cgroup/ ./cmd/cgpeak/ ./vmtest/smoke/ ./loader/ ./internal/kpeak/
# Under sudo, cgpeak runs commands as the user who ran sudo; the tests expect
# their workloads to run as the test binary's own user.
unexport SUDO_UID SUDO_GID SUDO_USER
help: ## list the targets
	@grep -E '^[a-z]+:.*##' Makefile | sed 's/:.*##/\t/'
build: ## build bin/cgpeak
	$(GO) build -o bin/cgpeak ./cmd/cgpeak
SUITE_RESULTS ?= $(CURDIR)/bin/suite-results
export CGPEAK_SUITE_RESULTS = $(SUITE_RESULTS)
test: ## everything: unit and host tests, the VM suite on each kernel of KERNELS, then the README's kernel table checked against them
	rm -rf $(SUITE_RESULTS)
	@# Every part runs even when one fails, so one run shows every failure.
	@# The host suite runs beside the first VMs: two TCG guests leave most of
	@# a core idle (they wait on emulated devices and timers), and the host
	@# suite's output is printed whole when it ends, so nothing interleaves.
	@$(MAKE) guest bin/vmtest vmtests
	@rc=0; $(MAKE) -s hosttest & host=$$!; \
	JOBS=$(JOBS) vmtest/all.sh "$(KERNELS)" "$(MODES)" $(VMPKGS) || rc=1; wait $$host || rc=1; \
	vmtest/summary.sh $(SUITE_RESULTS); \
	vmtest/table.sh --check $(SUITE_RESULTS) README.md || rc=1; exit $$rc
kernel-table: ## rewrite the README's kernel table from the last suite results (bin/suite-results)
	@t=$$(mktemp); vmtest/table.sh $(SUITE_RESULTS) > $$t && \
	awk -v t=$$t '/<!-- kernel table: begin/ { print; while ((getline l < t) > 0) print l; skip = 1; next } /<!-- kernel table: end/ { skip = 0 } !skip' README.md > README.md.new && \
	mv README.md.new README.md; rm -f $$t
hosttest: ## unit and host cgroup integration tests (needs root, gcc)
	@log=$$(mktemp /tmp/cgpeak-hosttest-XXXXXX.log); start=$$SECONDS; \
	$(GO) test -v -count=1 ./... >$$log 2>&1; rc=$$?; \
	grep -E '^(\s*--- |ok|FAIL|PASS$$|panic:|\s+\S+_test\.go:)' $$log; \
	p=$$(grep -cE '^\s*--- PASS' $$log); f=$$(grep -cE '^\s*--- FAIL' $$log); s=$$(grep -cE '^\s*--- SKIP' $$log); \
	echo "host suite: $$(uname -r): $$((p+f+s)) tests ran: $$p passed, $$f failed, $$s skipped; log $$log"; \
	mode=v2; [ -d /sys/fs/cgroup/memory ] && mode=v1; mkdir -p $(SUITE_RESULTS); \
	{ echo "# host $$(uname -r) $$mode"; grep -E '^\s*--- (PASS|FAIL|SKIP)' $$log | awk '{ sub(":", "", $$2); print $$2, $$3 }'; } > $(SUITE_RESULTS)/host.$$mode; \
	state=ok; [ $$rc -eq 0 ] || state=failed; \
	echo "host $$(uname -r) $$mode $$state $$((p+f+s)) $$p $$f $$s $$((SECONDS - start))" > $(SUITE_RESULTS)/host.$$mode.summary; \
	exit $$rc
N ?= 10
test-repeat: ## the host suite N times in a row (default 10; P=1 for one package at a time): lists every test that failed even once
	vmtest/repeat.sh $(N) "$(P)"
vmtests: ## each VM package's test binary, built once for every kernel and mode (bin/vmtests)
	@rm -rf bin/vmtests
	CGO_ENABLED=0 $(GO) test -c -o bin/vmtests/ $(VMPKGS)
vmtest: guest bin/vmtest vmtests ## the VM suite on one kernel: make vmtest KERNEL=bookworm|trixie-backports|/path/vmlinuz [MODES=v2]
	vmtest/suite.sh $(KERNEL) "$(MODES)" $(VMPKGS)
vmtest-systemd: guest bin/vmtest vmtests ## cgpeak as a normal user and as root in a systemd VM (bookworm image built by mmdebstrap, cached)
	vmtest/suite.sh bookworm systemd ./cmd/cgpeak/ -run 'Unprivileged|Sudo'
vmtest-all: guest bin/vmtest vmtests ## the VM suite on every kernel of KERNELS and the systemd VM, JOBS VMs at a time (default 2)
	JOBS=$(JOBS) vmtest/all.sh "$(KERNELS)" "$(MODES)" $(VMPKGS)
bench: guest bin/vmtest ## tracing overhead in the VMs: untraced vs traced wall time, events/s, lost (README: Performance)
	@for k in $(KERNELS); do bin/vmtest -q --kernel $$k --memory 2048 --timeout 30m --bin bin/guest --file bench/guest.sh:/bench.sh /bin/busybox sh /bench.sh || exit 1; done
	@$(MAKE) -s bench-host
	@$(MAKE) -s bench-explain
	@$(MAKE) -s bench-hyperfine
SCALE_KERNELS ?= bookworm trixie-backports
bench-scale: guest bin/vmtest ## the tracer at scale: P processes x 50 MiB at once, P = 1..CPUs, each backend and mode, in 8-vCPU VMs (on a bigger machine: sudo env PATH=$$PWD/bin/guest:$$PATH sh bench/scale.sh)
	@for k in $(SCALE_KERNELS); do bin/vmtest -q --kernel $$k --cpus 8 --memory 2048 --timeout 90m --bin bin/guest --env REPS=$${REPS:-3} --file bench/scale.sh:/scale.sh /bin/busybox sh /scale.sh || exit 1; done
bench-hyperfine: build ## cgpeak run -N beside hyperfine -N on /bin/true and a 10 ms spin (host; README: repeated runs)
	bench/hyperfine.sh
bench-host: guest ## the tracepoint backend's overhead on this machine's own kernel (root; where cgpeak probe picks it)
	@if bin/guest/cgpeak probe | grep -q 'with the memcg stat tracepoints'; then \
		d=$$(mktemp -d); cp bench/guest.sh $$d/; cd $$d && PATH=$(CURDIR)/bin/guest:$$PATH CONFIGS="tracepoint:summary tracepoint:charges" sh guest.sh; rc=$$?; rm -rf $$d; exit $$rc; \
	else echo "bench: this kernel's tracing backend is not the tracepoint one (see cgpeak probe): no native figures"; fi
bench-explain: build ## cgpeak explain on a 10-million-event trace, binary and JSON Lines, measured by cgpeak run (root)
	@$(GO) build -o bin/gentrace ./bench/gentrace
	@f=$$(mktemp); trap 'rm -f $$f $$f.json $$f.svg' EXIT; \
	for fmt in binary jsonl; do bin/gentrace -events 10000000 -format $$fmt > $$f || exit 1; \
	for opt in "" --timeline "--plot $$f.svg"; do \
	bin/cgpeak run --json --output $$f.json -- bin/cgpeak explain $$opt $$f > /dev/null && \
	sed -n 's/.*"\(wall_seconds\|user_seconds\|sys_seconds\|cgroup_peak_bytes\|ru_maxrss_bytes\)": *\([0-9.]*\).*/\1 \2/p' $$f.json | \
	awk '{ v[$$1] = $$2 } END { printf "bench: explain'"$${opt:+ $${opt%% *}}"' 10000000 events ('"$$fmt"', %s MB trace): wall %.2f s, cpu %.2f s, ru_maxrss %.1f MiB, cgroup peak %.1f MiB\n", '"$$(($$(stat -c %s $$f)/1000000))"', v["wall_seconds"], v["user_seconds"] + v["sys_seconds"], v["ru_maxrss_bytes"]/1048576, v["cgroup_peak_bytes"]/1048576 }' || exit 1; \
	done; done; rm -f $$f.json $$f.svg
guest: ## static binaries shipped into the VMs
	@mkdir -p bin/guest
	CGO_ENABLED=0 $(GO) build -o bin/guest/cgpeak ./cmd/cgpeak
	gcc -O1 -static -o bin/guest/touchpages testdata/touch/touch.c
	gcc -O1 -g -fno-omit-frame-pointer -ffile-prefix-map=$(CURDIR)=. -static -o bin/guest/smallbig testdata/userstacks/smallbig.c
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/guest/goalloc ./testdata/userstacks/goalloc
bin/vmtest: FORCE
	$(GO) build -o bin/vmtest ./cmd/vmtest
FORCE:
lint: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
generate: ## regenerate committed objects (the launcher: gcc; the BPF objects: clang, llvm, linux-libc-dev)
	$(GO) generate ./bpf/
	gcc -Os -static -nostdlib -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin \
		-Wl,--build-id=none -s -o launcher/launcher_amd64.bin launcher/launcher.c
check-generated: generate ## fail when committed objects are stale
	git diff --exit-code -- launcher/ bpf/
