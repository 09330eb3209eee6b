module github.com/cgpeak/cgpeak

go 1.26.8

require github.com/spf13/pflag v1.1.0

require golang.org/x/sys v0.50.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/godbus/dbus/v5 v5.2.4
)

require (
	github.com/google/shlex v0.0.0-20191202100458-e7afc7fbc510 // indirect
	gonum.org/v1/gonum v0.17.0 // indirect
)

tool github.com/cilium/ebpf/cmd/bpf2go
