// Package bpf holds the CO-RE programs cgpeak loads and their generated Go
// bindings; the objects are committed so building cgpeak needs no clang.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu" -target amd64 -type event -type cpu_state Cgpeak cgpeak.bpf.c
