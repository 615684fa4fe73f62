package httpapi

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/trail-audit/trail"
)

// textProblems finds the strings of a well-formed JSON document that are
// not valid UTF-8 text: bytes that are not UTF-8, or \u escapes of a lone
// surrogate (such as "\ud800"). A JSON decoder silently turns both into
// U+FFFD, so the event would be stored as other text than was sent; they
// are refused instead (SPEC §3), each named by its JSON pointer. A member
// name with such text is named by its member's path.
func textProblems(raw []byte) []trail.Problem {
	s := &textScanner{raw: raw}
	s.value("")
	return s.problems
}

type textScanner struct {
	raw      []byte
	i        int
	problems []trail.Problem
}

func (s *textScanner) space() {
	for s.i < len(s.raw) {
		switch s.raw[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value reads one value at path. The document is well-formed JSON (it was
// decoded before), so the scanner only finds where things are.
func (s *textScanner) value(path string) {
	s.space()
	if s.i >= len(s.raw) {
		return
	}
	switch s.raw[s.i] {
	case '{':
		s.i++
		for {
			s.space()
			if s.i >= len(s.raw) || s.raw[s.i] == '}' {
				s.i++
				return
			}
			if s.raw[s.i] == ',' {
				s.i++
				continue
			}
			start := s.i
			ok := s.str()
			var name string
			json.Unmarshal(s.raw[start:s.i], &name)
			p := path + "/" + trail.EscapePointer(name)
			if !ok {
				s.problems = append(s.problems, trail.Problem{Path: p, Message: "member name " + trail.InvalidTextMessage})
			}
			s.space()
			if s.i < len(s.raw) && s.raw[s.i] == ':' {
				s.i++
			}
			s.value(p)
		}
	case '[':
		s.i++
		for n := 0; ; {
			s.space()
			if s.i >= len(s.raw) || s.raw[s.i] == ']' {
				s.i++
				return
			}
			if s.raw[s.i] == ',' {
				s.i++
				continue
			}
			s.value(path + "/" + strconv.Itoa(n))
			n++
		}
	case '"':
		if !s.str() {
			s.problems = append(s.problems, trail.Problem{Path: path, Message: trail.InvalidTextMessage})
		}
	default: // a number, true, false or null
		for s.i < len(s.raw) {
			switch s.raw[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// str reads the string at s.i, through its closing quote, and reports
// whether it is valid UTF-8 text.
func (s *textScanner) str() bool {
	ok := true
	s.i++ // the opening quote
	for s.i < len(s.raw) {
		c := s.raw[s.i]
		switch {
		case c == '"':
			s.i++
			return ok
		case c == '\\':
			if s.i+1 < len(s.raw) && s.raw[s.i+1] == 'u' {
				r := s.hex4(s.i + 2)
				s.i += 6
				switch {
				case r >= 0xD800 && r < 0xDC00:
					// A high surrogate must be followed by a low one.
					if s.i+1 < len(s.raw) && s.raw[s.i] == '\\' && s.raw[s.i+1] == 'u' {
						if lo := s.hex4(s.i + 2); lo >= 0xDC00 && lo < 0xE000 {
							s.i += 6
							continue
						}
					}
					ok = false
				case r >= 0xDC00 && r < 0xE000:
					ok = false
				}
				continue
			}
			s.i += 2
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.raw[s.i:])
			if r == utf8.RuneError && size == 1 {
				ok = false
			}
			s.i += size
		}
	}
	return ok
}

// hex4 reads the four hex digits at i (-1 when they are not).
func (s *textScanner) hex4(i int) rune {
	if i+4 > len(s.raw) {
		return -1
	}
	n, err := strconv.ParseUint(string(s.raw[i:i+4]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}
