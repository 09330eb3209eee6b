// Package smoke holds the first tests run through the VM harness: that the
// kernel functions cgpeak traces exist and fire under kprobe and fentry
// programs. They skip, saying why, on kernels that cannot attach them.
package smoke
