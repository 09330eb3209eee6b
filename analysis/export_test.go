package analysis

// NewModelBins is NewModel keeping a timeline of at most bins intervals
// (7 points each), or every step when bins is 0: the bound's tests compare
// the two.
func NewModelBins(batch uint64, bins int) *Model {
	m := NewModel(batch, true)
	if bins == 0 {
		m.timeline.all = true
	} else {
		m.timeline.nbins = bins
	}
	return m
}

// TimelineHeld is how many points a model's timeline holds now.
func (m *Model) TimelineHeld() int { return m.timeline.held() }

// SameExtremes is sameExtremes for the tests outside the package.
var SameExtremes = sameExtremes
