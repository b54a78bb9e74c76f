package engine

import "strings"

// StopMatcher finds stop strings in streamed output. It holds back text
// that may be the start of a stop string, so streamed output never
// includes any part of a stop string: what Push returns is final.
//
// A stop string ends generation as soon as it is complete; when one Push
// completes several, the one that starts first wins. Text is matched as
// bytes, so a valid UTF-8 stream is only ever cut at rune boundaries.
// A StopMatcher is not safe for concurrent use.
type StopMatcher struct {
	stops   []string
	held    string // pushed text not yet emitted: a prefix of some stop string
	stopped bool
}

// NewStopMatcher returns a matcher for the given stop strings; empty
// strings are ignored. With no stop strings Push returns its text as is.
func NewStopMatcher(stops []string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s != "" {
			m.stops = append(m.stops, s)
		}
	}
	return m
}

// Push adds newly decoded text and returns what can be sent now. When the
// text completes a stop string, emit is everything before it and stopped
// is true; later calls return "", true and the rest of the text is
// dropped.
func (m *StopMatcher) Push(text string) (emit string, stopped bool) {
	if m.stopped {
		return "", true
	}
	if len(m.stops) == 0 {
		return text, false
	}
	buf := m.held + text
	first := -1
	for _, s := range m.stops {
		// held is free of complete stop strings, so a match ends in text.
		from := max(len(m.held)-len(s)+1, 0)
		if i := strings.Index(buf[from:], s); i >= 0 && (first < 0 || from+i < first) {
			first = from + i
		}
	}
	if first >= 0 {
		m.stopped = true
		m.held = ""
		return buf[:first], true
	}
	keep := 0
	for _, s := range m.stops {
		for n := min(len(s)-1, len(buf)); n > keep; n-- {
			if strings.HasSuffix(buf, s[:n]) {
				keep = n
				break
			}
		}
	}
	m.held = buf[len(buf)-keep:]
	return buf[:len(buf)-keep], false
}

// Flush returns the text still held back, for the end of generation when
// no stop string completed it, and empties the matcher. It returns ""
// after a stop string matched.
func (m *StopMatcher) Flush() string {
	h := m.held
	m.held = ""
	return h
}

// Stopped reports whether a stop string has matched.
func (m *StopMatcher) Stopped() bool { return m.stopped }
