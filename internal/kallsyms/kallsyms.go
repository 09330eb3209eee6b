// Package kallsyms reads the kernel's symbol table (/proc/kallsyms): which
// functions exist as symbols (a static function inlined everywhere has
// none) and which function an address falls in.
package kallsyms

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrHidden: the addresses read as zero (kptr_restrict, or not root).
var ErrHidden = errors.New("/proc/kallsyms hides addresses (kptr_restrict)")

// Table is the kernel's text symbols, sorted by address.
type Table struct {
	addr []uint64
	name []string
	has  map[string]bool
}

var loaded struct {
	once sync.Once
	t    *Table
	err  error
}

// Load reads /proc/kallsyms, once per process: the kernel builds the file
// anew at every read (a quarter of a second under emulation), and a traced
// run asks for it more than once. Module symbols that appear later are of
// no use to cgpeak, which needs core kernel functions only.
func Load() (*Table, error) {
	loaded.once.Do(func() { loaded.t, loaded.err = load() })
	return loaded.t, loaded.err
}

func load() (*Table, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("reading /proc/kallsyms: %w", err)
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading /proc/kallsyms: %w", err)
	}
	return t, nil
}

// Parse reads a table in the format of /proc/kallsyms: "address type
// name [module]" a line. Only text symbols (t, T) are kept.
func Parse(r io.Reader) (*Table, error) {
	type sym struct {
		a uint64
		n string
	}
	var all []sym
	t := &Table{has: map[string]bool{}}
	sc := bufio.NewScanner(r)
	// Large reads: each read of /proc/kallsyms is a system call that
	// formats symbols in the kernel, and the default 4 KiB makes a hundred
	// times more of them than needed.
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	hidden := true
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || (fs[1] != "t" && fs[1] != "T") {
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("symbol %s: bad address %q", fs[2], fs[0])
		}
		t.has[fs[2]] = true
		if a != 0 {
			hidden = false
			all = append(all, sym{a, fs[2]})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].a < all[j].a })
	for _, s := range all {
		t.addr = append(t.addr, s.a)
		t.name = append(t.name, s.n)
	}
	if hidden && len(t.has) > 0 {
		return t, ErrHidden
	}
	return t, nil
}

// Has says whether the kernel has a function of that name as a symbol.
func (t *Table) Has(name string) bool { return t != nil && t.has[name] }

// Names names the function each address falls in, up to the first zero
// address (the end of a stack); addresses below every symbol are left out.
func (t *Table) Names(ips []uint64) []string {
	var out []string
	for _, ip := range ips {
		if ip == 0 {
			break
		}
		if t == nil {
			continue
		}
		i := sort.Search(len(t.addr), func(i int) bool { return t.addr[i] > ip }) - 1
		if i >= 0 {
			out = append(out, t.name[i])
		}
	}
	return out
}
