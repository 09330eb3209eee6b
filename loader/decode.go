package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cgpeak/cgpeak/analysis"
)

// eventSize is sizeof(struct event) in bpf/cgpeak.bpf.c.
const eventSize = 96

const (
	flagFailed = 1
	flagForced = 2
)

// decode reads one struct event; the layout is fixed by the C source and
// checked against the generated Go type in the tests.
func decode(b []byte) (Event, error) {
	if len(b) < eventSize {
		return Event{}, fmt.Errorf("short event: %d bytes, want %d", len(b), eventSize)
	}
	le := binary.LittleEndian
	var e Event
	e.Time = le.Uint64(b[0:])
	e.Pages = le.Uint64(b[8:])
	e.Usage = le.Uint64(b[16:])
	e.Watermark = le.Uint64(b[24:])
	e.CPU = int(le.Uint32(b[32:]))
	e.PID = int(le.Uint32(b[36:]))
	e.TID = int(le.Uint32(b[40:]))
	e.Op = analysis.Op(b[44])
	switch b[45] {
	case 1:
		e.Counter = "memory"
	case 2:
		e.Counter = "memsw"
	}
	e.Fn = fnNames[b[46]]
	e.Failed = b[47]&flagFailed != 0
	e.Forced = b[47]&flagForced != 0
	comm := b[48:64]
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	e.Comm = string(comm)
	e.Stack = le.Uint64(b[64:])
	e.Gfp = le.Uint32(b[72:])
	e.Consumed = uint64(le.Uint32(b[76:]))
	e.Cgroup = le.Uint64(b[80:])
	e.Stocked = uint64(le.Uint32(b[88:]))
	e.Real = int64(int32(le.Uint32(b[92:])))
	return e, nil
}
