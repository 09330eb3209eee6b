SHELL := /bin/bash
GO ?= go

.PHONY: help build test lint generate check-generated
help: ## list the targets
	@grep -E '^[a-z]+:.*##' Makefile | sed 's/:.*##/\t/'
build: ## build bin/cgpeak
	$(GO) build -o bin/cgpeak ./cmd/cgpeak
test: ## unit and host cgroup integration tests (needs root, gcc)
	$(GO) test -v -count=1 ./... 2>&1 | tee /tmp/cgpeak-test.log | grep -E '^(=== RUN|--- |ok|FAIL|PASS|SKIP|\s+\S+_test.go)' ; test $${PIPESTATUS[0]} -eq 0
lint: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
generate: ## regenerate committed objects (the launcher; needs gcc)
	gcc -Os -static -nostdlib -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin \
		-Wl,--build-id=none -s -o launcher/launcher_amd64.bin launcher/launcher.c
check-generated: generate ## fail when committed objects are stale
	git diff --exit-code -- launcher/
