package trace

import (
	"strconv"

	"github.com/cgpeak/cgpeak/analysis"
)

// fastEvent decodes the event lines cgpeak writes (a flat object of numbers,
// plain strings and booleans) without reflection: encoding/json managed about
// 230k lines a second, too slow for traces of millions of charges. Anything
// else (escapes, nesting, a "type" key, malformed input) returns false and
// the line goes through encoding/json, which has the last word.
func fastEvent(b []byte, e *Event) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		ks, ke, ok := plainString(b, i)
		if !ok {
			return false
		}
		key := b[ks:ke]
		for _, c := range key {
			if c >= 'A' && c <= 'Z' {
				return false // encoding/json matches keys regardless of case
			}
		}
		i = skipWS(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			vs, ve, ok := plainString(b, i)
			if !ok {
				return false
			}
			v := b[vs:ve]
			switch string(key) {
			case "comm":
				e.Comm = string(v)
			case "op":
				o, ok := analysis.OpByName(string(v))
				if !ok {
					return false // encoding/json says which op is unknown
				}
				e.Op = o
			case "fn":
				e.Fn = intern(v)
			case "counter":
				e.Counter = intern(v)
			case "kind":
				e.Kind = intern(v)
			case "caller":
				e.Caller = string(v)
			case "type":
				return false
			default:
				if isNumberKey(key) || isBoolKey(key) {
					return false // a type mismatch: let encoding/json say so
				}
			}
			i = ve + 1
		case c >= '0' && c <= '9':
			j := i
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') || c == '0' && j-i > 1 {
				return false
			}
			n, err := strconv.ParseUint(string(b[i:j]), 10, 64)
			if err != nil {
				return false
			}
			switch string(key) {
			case "t":
				e.Time = n
			case "cpu":
				e.CPU = int(n)
			case "from_cpu":
				from := int(n)
				e.FromCPU = &from
			case "pid":
				e.PID = int(n)
			case "tid":
				e.TID = int(n)
			case "pages":
				e.Pages = n
			case "usage":
				e.Usage = n
			case "watermark":
				e.Watermark = n
			case "consumed":
				e.Consumed = n
			case "stocked":
				e.Stocked = n
			case "real":
				if n > 1<<63-1 {
					return false
				}
				e.Real = int64(n)
			case "cgroup":
				e.Cgroup = n
			case "ustack":
				e.UStack = n
			case "kstack":
				e.KStack = n
			case "gfp":
				if n > 1<<32-1 {
					return false
				}
				e.Gfp = uint32(n)
			default:
				if !isNumberKey(key) && (isBoolKey(key) || isStringKey(key)) {
					return false
				}
			}
			if (string(key) == "cpu" || string(key) == "from_cpu" || string(key) == "pid" || string(key) == "tid") && n > 1<<31 {
				return false
			}
			i = j
		case c == 't' || c == 'f':
			v := c == 't'
			word := "false"
			if v {
				word = "true"
			}
			if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
				return false
			}
			switch string(key) {
			case "forced":
				e.Forced = v
			case "failed":
				e.Failed = v
			default:
				if isNumberKey(key) || isStringKey(key) {
					return false
				}
			}
			i += len(word)
		default:
			return false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipWS(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipWS(b, i+1)
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// plainString finds the string starting at b[i] == '"'; false if it holds an
// escape or a control character (encoding/json decodes those).
func plainString(b []byte, i int) (start, end int, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return i + 1, j, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

var interned = map[string]string{}

func init() {
	for _, s := range []string{"charge", "counter_charge", "counter_uncharge", "refill_stock", "drain_stock",
		"try_charge_memcg", "page_counter_try_charge", "page_counter_charge", "page_counter_uncharge", "memory", "memsw", "swap",
		"anon", "file", "shmem", "swapin", "user", "thp", "page_tables", "kernel_stack", "slab", "vmalloc", "socket", "kernel", "unknown",
		"stat_add", "stat_sub", "mod_memcg_state", "mod_memcg_lruvec_state", "sock"} {
		interned[s] = s
	}
}

func intern(b []byte) string {
	if s, ok := interned[string(b)]; ok {
		return s
	}
	return string(b)
}

func isNumberKey(k []byte) bool {
	switch string(k) {
	case "t", "cpu", "from_cpu", "pid", "tid", "pages", "usage", "watermark", "gfp", "consumed", "cgroup", "stocked", "real", "ustack", "kstack":
		return true
	}
	return false
}

func isBoolKey(k []byte) bool { return string(k) == "forced" || string(k) == "failed" }

func isStringKey(k []byte) bool {
	switch string(k) {
	case "comm", "op", "fn", "counter", "type", "kind", "caller":
		return true
	}
	return false
}
