SHELL := /bin/bash
GO ?= go

.PHONY: help build test hosttest vmtest vmtest-all vmtest-systemd guest lint generate check-generated bench bench-explain

# The VM suite: kernels by Debian suite (or a vmlinuz path), guest cgroup
# modes, and the packages whose tests need a real kernel.
KERNELS ?= bookworm trixie-backports
KERNEL ?= bookworm
MODES ?= v2 v1
VMPKGS ?= ./cgroup/ ./cmd/cgpeak/ ./vmtest/smoke/ ./loader/
# Under sudo, cgpeak runs commands as the user who ran sudo; the tests expect
# their workloads to run as the test binary's own user.
unexport SUDO_UID SUDO_GID SUDO_USER
help: ## list the targets
	@grep -E '^[a-z]+:.*##' Makefile | sed 's/:.*##/\t/'
build: ## build bin/cgpeak
	$(GO) build -o bin/cgpeak ./cmd/cgpeak
test: ## everything: unit and host tests, then the VM suite on each kernel of KERNELS
	$(MAKE) hosttest
	$(MAKE) vmtest-all
	$(MAKE) vmtest-systemd
hosttest: ## unit and host cgroup integration tests (needs root, gcc)
	@log=$$(mktemp /tmp/cgpeak-hosttest-XXXXXX.log); \
	$(GO) test -v -count=1 ./... >$$log 2>&1; rc=$$?; \
	grep -E '^(\s*--- |ok|FAIL|PASS$$|panic:|\s+\S+_test\.go:)' $$log; \
	p=$$(grep -cE '^\s*--- PASS' $$log); f=$$(grep -cE '^\s*--- FAIL' $$log); s=$$(grep -cE '^\s*--- SKIP' $$log); \
	echo "host suite: $$(uname -r): $$((p+f+s)) tests ran: $$p passed, $$f failed, $$s skipped; log $$log"; exit $$rc
vmtest: guest bin/vmtest ## the VM suite on one kernel: make vmtest KERNEL=bookworm|trixie-backports|/path/vmlinuz [MODES=v2]
	vmtest/suite.sh $(KERNEL) "$(MODES)" $(VMPKGS)
vmtest-systemd: guest bin/vmtest ## cgpeak as a normal user and as root in a systemd VM (bookworm image built by mmdebstrap, cached)
	vmtest/suite.sh bookworm systemd ./cmd/cgpeak/ -run 'Unprivileged|Sudo'
vmtest-all: guest bin/vmtest
	@fail=0; for k in $(KERNELS); do vmtest/suite.sh $$k "$(MODES)" $(VMPKGS) || fail=1; done; exit $$fail
bench: guest bin/vmtest ## tracing overhead in the VMs: untraced vs traced wall time, events/s, lost (README: Performance)
	@for k in $(KERNELS); do bin/vmtest -q --kernel $$k --memory 2048 --timeout 30m --bin bin/guest --file bench/guest.sh:/bench.sh /bin/busybox sh /bench.sh || exit 1; done
	@$(MAKE) -s bench-explain
bench-explain: build ## cgpeak explain on a 10-million-event trace, measured by cgpeak run (root)
	@$(GO) build -o bin/gentrace ./bench/gentrace
	@f=$$(mktemp --suffix=.jsonl); trap 'rm -f $$f' EXIT; bin/gentrace -events 10000000 > $$f && \
	bin/cgpeak run --json --output $$f.json -- bin/cgpeak explain $$f > /dev/null && \
	sed -n 's/.*"\(wall_seconds\|cgroup_peak_bytes\|ru_maxrss_bytes\)": *\([0-9.]*\).*/\1 \2/p' $$f.json | tr '\n' ' ' | \
	awk '{ printf "bench: explain 10000000 events (%s MB trace): wall %.2f s, ru_maxrss %.1f MiB, cgroup peak %.1f MiB\n", '"$$(($$(stat -c %s $$f)/1000000))"', $$2, $$6/1048576, $$4/1048576 }'; rm -f $$f.json
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
