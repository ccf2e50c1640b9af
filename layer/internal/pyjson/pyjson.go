// Package pyjson writes JSON exactly as Python's json.dumps does with its defaults
// (ensure_ascii: every non-ASCII character escaped), so the injected payloads, the X-Ray cause
// header and the log records are the bytes the Python layer and awslambdaric produced: an
// ASCII header cannot be split, and a caller cannot tell an injected error from a real one.
package pyjson

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// String appends s as a JSON string literal. Bytes that are not UTF-8 are written as the
// lone surrogates Python's surrogateescape would have given them (\udcXX), as Python would.
func String(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(b, `\udc%02x`, s[i])
			i++
			continue
		}
		i += size
		writeRune(b, r)
	}
	b.WriteByte('"')
}

func writeRune(b *strings.Builder, r rune) {
	switch r {
	case '"':
		b.WriteString(`\"`)
	case '\\':
		b.WriteString(`\\`)
	case '\n':
		b.WriteString(`\n`)
	case '\r':
		b.WriteString(`\r`)
	case '\t':
		b.WriteString(`\t`)
	case '\b':
		b.WriteString(`\b`)
	case '\f':
		b.WriteString(`\f`)
	default:
		switch {
		case r < 0x20 || (r > 0x7e && r < 0x10000 && r != 0x7f):
			fmt.Fprintf(b, `\u%04x`, r)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
}

// Quote is String for one value.
func Quote(s string) string {
	var b strings.Builder
	String(&b, s)
	return b.String()
}

// Repr is Python's repr() of a str, as the Python layer put a bad value in its log lines.
func Repr(s string) string {
	quote := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = `"`
	}
	var b strings.Builder
	b.WriteString(quote)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case string(r) == quote:
			b.WriteString(`\` + quote)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(quote)
	return b.String()
}
