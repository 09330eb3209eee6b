package plot

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Flame draws folded stacks ("a;b;c N" lines, root first, as cgpeak explain
// --folded writes them) as a flame graph: one box per frame, its width its
// share of all N (pages charged), the root at the bottom, children sorted by
// name as flamegraph.pl does; kernel frames (suffix "_[k]") in orange. Each
// box has a tooltip with the frame and its pages. Boxes narrower than a
// tenth of a pixel are left out (their pages stay in their parent's width).
func Flame(w io.Writer, title string, folded io.Reader) error {
	root := &node{children: map[string]*node{}}
	sc := bufio.NewScanner(folded)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			return fmt.Errorf("folded stacks line %d: no count", line)
		}
		n, err := strconv.ParseUint(l[i+1:], 10, 64)
		if err != nil {
			return fmt.Errorf("folded stacks line %d: %w", line, err)
		}
		nd := root
		nd.value += n
		for _, f := range strings.Split(l[:i], ";") {
			c := nd.children[f]
			if c == nil {
				c = &node{name: f, children: map[string]*node{}}
				nd.children[f] = c
			}
			c.value += n
			nd = c
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if root.value == 0 {
		return fmt.Errorf("flame graph: no stacks with pages")
	}
	const fw, rowH, pad = 1200.0, 17.0, 10.0
	depth := root.depth()
	h := float64(depth)*rowH + 60
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="monospace" font-size="11">`+"\n", fw+2*pad, h, fw+2*pad, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#f8f8f8"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" font-family="sans-serif">%s</text>`+"\n", pad, esc(title))
	scale := fw / float64(root.value)
	var draw func(n *node, x float64, level int)
	draw = func(n *node, x float64, level int) {
		for _, name := range n.sorted() {
			c := n.children[name]
			wd := float64(c.value) * scale
			if wd >= 0.1 {
				y := h - 10 - float64(level+1)*rowH
				fmt.Fprintf(&b, `<g><title>%s: %d pages (%.2f%%)</title><rect x="%.2f" y="%.1f" width="%.2f" height="%.0f" fill="%s" rx="2"/>`,
					esc(name), c.value, 100*float64(c.value)/float64(root.value), pad+x, y, wd, rowH-1, color(name))
				if chars := int((wd - 6) / 6.6); chars >= 3 {
					label := name
					if len(label) > chars {
						label = label[:chars-2] + ".."
					}
					fmt.Fprintf(&b, `<text x="%.2f" y="%.1f">%s</text>`, pad+x+3, y+12, esc(label))
				}
				b.WriteString("</g>\n")
				draw(c, x, level+1)
			}
			x += wd
		}
	}
	draw(root, 0, 0)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

type node struct {
	name     string
	value    uint64
	children map[string]*node
}

func (n *node) sorted() []string {
	names := make([]string, 0, len(n.children))
	for k := range n.children {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (n *node) depth() int {
	d := 0
	for _, c := range n.children {
		d = max(d, c.depth())
	}
	return d + 1
}

// color is warm for user frames, orange for kernel ones, the shade taken
// from the name so a function keeps its color across graphs.
func color(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	v := h.Sum32()
	if strings.HasSuffix(name, "_[k]") {
		return fmt.Sprintf("rgb(%d,%d,%d)", 230+v%25, 140+v/25%50, 40+v/1250%30)
	}
	return fmt.Sprintf("rgb(%d,%d,%d)", 205+v%50, 60+v/50%130, 40+v/6500%40)
}
