module github.com/cgpeak/cgpeak

go 1.26.8

require github.com/spf13/pflag v1.1.0

require golang.org/x/sys v0.50.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/godbus/dbus/v5 v5.2.4
	github.com/google/pprof v0.0.0-20261105003125-4bf881d7fb0b
	github.com/google/shlex v0.0.0-20191202100458-e7afc7fbc510
	github.com/ianlancetaylor/demangle v0.0.0-20260724033716-83e58baca724
	gonum.org/v1/gonum v0.17.0
)

tool github.com/cilium/ebpf/cmd/bpf2go
