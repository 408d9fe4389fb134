package query

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		src string
		pos int
		msg string
	}{
		{``, 1, `empty filter`},
		{`   `, 1, `empty filter`},
		{`color = )`, 9, `expected a value after "=", found ")"`},
		{`color = `, 9, `expected a value after "=", found the end of the filter`},
		{`color == "red"`, 7, `unknown operator "=="`},
		{`color <> "red"`, 7, `unknown operator "<>"`},
		{`color LIKE "r%"`, 7, `unknown operator "LIKE"`},
		{`color`, 6, `expected a comparison (= != < <= > >=), CONTAINS or IN after "color", found the end of the filter`},
		{`color = "red`, 9, `unterminated string`},
		{`color = "red\`, 9, `unterminated string`},
		{`color = "r\qd"`, 11, `invalid escape "\\q" in string`},
		{`color = "r\éd"`, 11, `invalid escape "\\é" in string`},
		{`color = "\u12"`, 10, `invalid escape "\\u12" in string: \u needs four hex digits`},
		{`color = "\ud800"`, 10, `invalid escape "\\ud800" in string: a surrogate without its pair`},
		{`color = "\udc00\ud800"`, 10, `invalid escape "\\udc00" in string: a surrogate without its pair`},
		{`color = "\ud800\u0041"`, 10, `invalid escape "\\ud800" in string: a surrogate without its pair`},
		{"color = \"a\tb\"", 11, `control character U+0009 in string; write it as an escape such as \n`},
		{"color = \"a\xffb\"", 11, `invalid UTF-8`},
		{`color = red`, 9, `expected a value (strings are double-quoted) after "=", found "red"`},
		{`color = "red" size = 1`, 15, `expected AND, OR or the end of the filter after string "red", found "size"`},
		{`color = "red")`, 14, `unexpected ")" with no "(" to close`},
		{`(color = "red"`, 15, `expected AND, OR or ")" to close the "(" at column 1 after string "red", found the end of the filter`},
		{`color = "red" AND`, 18, `expected an attribute name, NOT or "(" after "AND", found the end of the filter`},
		{`color = "red" OR OR x = 1`, 18, `expected an attribute name, NOT or "(" after "OR", found "OR" (a keyword; quote an attribute so named: "OR")`},
		{`and = 1`, 1, `expected an attribute name, NOT or "(", found "and" (a keyword; quote an attribute so named: "and")`},
		{`year < "2020"`, 8, `"<" compares numbers only, found string "2020"`},
		{`flag >= true`, 9, `">=" compares numbers only, found "true"`},
		{`year = NaN`, 8, `NaN is not a finite number; filters compare finite numbers only`},
		{`year > -Inf`, 8, `unexpected character "-"`},
		{`year > inf`, 8, `inf is not a finite number; filters compare finite numbers only`},
		{`year = 1e999`, 8, `number 1e999 is out of range`},
		{`year = 1.2.3`, 8, `invalid number "1.2.3"`},
		{`year>=2020AND year<2024`, 7, `invalid number "2020AND"`},
		{`year = - 1`, 8, `unexpected character "-"`},
		{`color IN "red"`, 10, `expected "(" after "IN", found string "red"`},
		{`color IN ()`, 11, `expected a value after "(", found ")"`},
		{`color IN ("red",)`, 17, `expected a value after ",", found ")"`},
		{`color IN ("red" "blue")`, 17, `expected "," or ")" after string "red", found string "blue"`},
		{`color NOT "red"`, 11, `expected IN after "NOT", found string "red"`},
		{`NOT`, 4, `expected an attribute name, NOT or "(" after "NOT", found the end of the filter`},
		{`"" = 1`, 1, `empty attribute name`},
		{`color = "red" # comment`, 15, `unexpected character "#"`},
		{`color = ’red’`, 9, `unexpected character "’"`},
		{strings.Repeat("(", 65) + "a = 1" + strings.Repeat(")", 65), 65, `filter nests parentheses and NOTs deeper than 64`},
		{strings.Repeat("NOT ", 65) + "a = 1", 257, `filter nests parentheses and NOTs deeper than 64`},
		{`a = "` + strings.Repeat("x", MaxFilterLength) + `"`, MaxFilterLength + 1, fmt.Sprintf(`filter is %d bytes, more than the maximum of %d`, MaxFilterLength+6, MaxFilterLength)},
		// 1e5 prints as 100000: a source under the limit whose canonical
		// form is over it.
		{"a IN (" + strings.Repeat("1e5,", MaxFilterLength/4-4) + "1)", 1, `filter's canonical form is 131048 bytes, more than the maximum of 65536`},
	} {
		_, err := Parse(tc.src)
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("Parse(%.40q): error %v, want a *FilterError", tc.src, err)
			continue
		}
		if !errors.Is(err, ErrInvalidFilter) || fe.Src != tc.src {
			t.Errorf("Parse(%.40q): %v does not wrap ErrInvalidFilter or has the wrong Src", tc.src, err)
		}
		if fe.Pos != tc.pos || fe.Msg != tc.msg {
			t.Errorf("Parse(%.40q):\n got column %d: %s\nwant column %d: %s", tc.src, fe.Pos, fe.Msg, tc.pos, tc.msg)
		}
		if want := fmt.Sprintf("query: invalid filter: column %d: %s", tc.pos, tc.msg); err.Error() != want {
			t.Errorf("Parse(%.40q).Error() = %q, want %q", tc.src, err.Error(), want)
		}
	}
}

func TestParseLimits(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("(", MaxFilterDepth) + "a = 1" + strings.Repeat(")", MaxFilterDepth),
		strings.Repeat("NOT ", MaxFilterDepth) + "a = 1",
		strings.Repeat("NOT (", MaxFilterDepth/2) + "a = 1" + strings.Repeat(")", MaxFilterDepth/2),
		// Long AND chains are flat, not deep.
		strings.Repeat("a = 1 AND ", 5000) + "a = 1",
		`a = "` + strings.Repeat("x", MaxFilterLength-6) + `"`,
	} {
		e, err := Parse(src)
		if err != nil {
			t.Errorf("Parse(%.40q…): %v", src, err)
			continue
		}
		if _, err := Parse(e.String()); err != nil {
			t.Errorf("Parse(String()) of %.40q…: %v", src, err)
		}
	}
}

func TestParseCanonical(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`color = "red"`, `color = "red"`},
		{`  color="red"  `, `color = "red"`},
		{"color\t!=\n\"red\"", `color != "red"`},
		{`"color" = "red"`, `color = "red"`},
		{`"and" = 1`, `"and" = 1`},
		{`"TRUE" = true`, `"TRUE" = true`},
		{`"size (cm)" >= 3`, `"size (cm)" >= 3`},
		{`"1st" = 1`, `"1st" = 1`},
		{`a.b-c_d = 1`, `a.b-c_d = 1`},
		{`_x = FALSE`, `_x = false`},
		{`color in ("red", "blue")`, `color IN ("red", "blue")`},
		{`color Not In ("red",1,TRUE)`, `color NOT IN ("red", 1, true)`},
		{`year >= 2020 and year < 2024`, `year >= 2020 AND year < 2024`},
		{`a = 1 OR b = 2 AND c = 3`, `a = 1 OR b = 2 AND c = 3`},
		{`(a = 1 OR b = 2) AND c = 3`, `(a = 1 OR b = 2) AND c = 3`},
		{`a = 1 AND (b = 2 AND c = 3)`, `a = 1 AND (b = 2 AND c = 3)`},
		{`a = 1 OR (b = 2 OR c = 3)`, `a = 1 OR (b = 2 OR c = 3)`},
		{`a = 1 OR (b = 2 AND c = 3)`, `a = 1 OR b = 2 AND c = 3`},
		{`((a = 1))`, `a = 1`},
		{`NOT a = 1`, `NOT a = 1`},
		{`NOT (a = 1)`, `NOT a = 1`},
		{`not not a = 1`, `NOT NOT a = 1`},
		{`NOT (a = 1 AND b = 2)`, `NOT (a = 1 AND b = 2)`},
		{`NOT a = 1 AND b = 2`, `NOT a = 1 AND b = 2`},
		{`(NOT a = 1) AND b = 2`, `NOT a = 1 AND b = 2`},
		{`x = -0`, `x = -0`},
		{`x = 0.0`, `x = 0`},
		{`x = 1e5`, `x = 100000`},
		{`x = 1E6`, `x = 1e+06`},
		{`x = -2.50e-3`, `x = -0.0025`},
		{`x = .5`, `x = 0.5`},
		{`x = +5.`, `x = 5`},
		{`x = 0x1p-2`, `x = 0.25`},
		{`x = 1e-400`, `x = 0`},
		{`x < 1.7976931348623157e308`, `x < 1.7976931348623157e+308`},
		{`s = "a\"b\\c\/d\b\f\n\r\t"`, `s = "a\"b\\c/d\b\f\n\r\t"`},
		{`s = "\u0041\u00e9\u20AC\ud83d\ude00\u0000\u001f\u007f"`, "s = \"Aé€😀\\u0000\\u001f\x7f\""},
		{`s = "ünïcödé"`, `s = "ünïcödé"`},
		{`"é" = "x"`, `"é" = "x"`},
	} {
		e, err := Parse(tc.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		if got := e.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.src, got, tc.want)
		}
		e2, err := Parse(e.String())
		if err != nil {
			t.Errorf("Parse(%q): %v", e.String(), err)
			continue
		}
		if !reflect.DeepEqual(e, e2) {
			t.Errorf("%q and its canonical form %q parse differently", tc.src, e.String())
		}
	}
}

func TestParseValues(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want node
	}{
		{`s = "a\u00e9\ud83d\ude00\n"`, &cmpNode{"s", opEq, "aé😀\n"}},
		{`x = -0`, &cmpNode{"x", opEq, math.Copysign(0, -1)}},
		{`x >= -1.5e3`, &cmpNode{"x", opGe, -1500.0}},
		{`f != TRUE`, &cmpNode{"f", opNe, true}},
		{`"a b" IN ("x", 2, false)`, &inNode{"a b", []any{"x", 2.0, false}, false}},
		{`a NOT IN (1)`, &inNode{"a", []any{1.0}, true}},
		{`NOT a = 1 OR b = 2 AND NOT c = 3`, &orNode{[]node{
			&notNode{&cmpNode{"a", opEq, 1.0}},
			&andNode{[]node{&cmpNode{"b", opEq, 2.0}, &notNode{&cmpNode{"c", opEq, 3.0}}}},
		}}},
	} {
		e, err := Parse(tc.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		if !reflect.DeepEqual(e.root, tc.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tc.src, e.root, tc.want)
		}
	}
	e, _ := Parse(`x = -0`)
	if v := e.root.(*cmpNode).val.(float64); !math.Signbit(v) {
		t.Errorf("x = -0 parsed to %v, want -0", v)
	}
}

var fuzzSeeds = []string{
	`color = "red"`,
	`color != "red" AND year >= 2020 AND year < 2024`,
	`color IN ("red", "blue") OR NOT (size > 10 OR "shipping.free" = true)`,
	`a NOT IN (1, -0, "x", false)`,
	`not (a=1 or b=2) and ((c<=-1.5e-3))`,
	`s = "\u00e9\ud83d\ude00\n\"\\"`,
	`x = 0x1p-2 OR x = .5 OR x = 1e5`,
	`"and" = TRUE`,
	``,
	`color = )`,
	`color == "red"`,
	`color = "red`,
	`s = "\ud800"`,
	`year = NaN`,
	`year = 1e999`,
	`(((a = 1)`,
	`a = 1)`,
	"a = \"\x00\"",
	"\xff",
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("Parse(%q): error %v is not a *FilterError wrapping ErrInvalidFilter", src, err)
			}
			if fe.Pos < 1 || fe.Pos > len(src)+1 || fe.Src != src {
				t.Fatalf("Parse(%q): error at column %d of %d bytes (%v)", src, fe.Pos, len(src), err)
			}
			if !utf8.ValidString(fe.Msg) {
				t.Fatalf("Parse(%q): message %q is not UTF-8", src, fe.Msg)
			}
			return
		}
		canon := e.String()
		e2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", src, canon, err)
		}
		if e2.String() != canon || !reflect.DeepEqual(e2.root, e.root) {
			t.Fatalf("Parse(%q) = %q, which parses to %q", src, canon, e2.String())
		}
	})
}
