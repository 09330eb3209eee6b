// Package bpf holds the CO-RE programs cgpeak loads and their generated Go
// bindings; the objects are committed so building cgpeak needs no clang.
//
// cgpeak.bpf.c is built three times, once per mode (see its head): the
// per-charge object also generates the event record and its enums, which
// the other two share (TestObjectsShareTheEvent checks they agree).
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -DMODE_CHARGES -I/usr/include/x86_64-linux-gnu" -target amd64 -type event -type op -type counter_kind -type fn -type flag -type ustack_stat Charges cgpeak.bpf.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -DMODE_SUMMARY -I/usr/include/x86_64-linux-gnu" -target amd64 -type cpu_state Summary cgpeak.bpf.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -DMODE_STOCKS -I/usr/include/x86_64-linux-gnu" -target amd64 Stocks cgpeak.bpf.c

// Event is one ring-buffer record, as every object writes it.
type Event = ChargesEvent
