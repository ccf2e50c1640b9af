package pyjson

import "testing"

func TestQuoteEscapesLikePythonJSONDumps(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"line\r\nX-Evil: 1", `"line\r\nX-Evil: 1"`},
		{"slow down ✋", `"slow down \u270b"`},
		{"🎉", `"\ud83c\udf89"`},
		{"\x01\x7f", `"\u0001` + "\x7f" + `"`},
		{"bad\xffbyte", `"bad\udcffbyte"`},
	}
	for _, c := range cases {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestReprQuotesLikePython(t *testing.T) {
	cases := []struct{ in, want string }{
		{"fast", `'fast'`},
		{"it's", `"it's"`},
		{"a\nb", `'a\nb'`},
	}
	for _, c := range cases {
		if got := Repr(c.in); got != c.want {
			t.Errorf("Repr(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}
