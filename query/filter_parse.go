package query

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// Limits on a filter, so that a request cannot make Parse or Compile recurse
// or allocate without bound.
const (
	// MaxFilterLength is the longest filter in bytes, for the source and
	// for its canonical form (Expr.String), so that the latter re-parses.
	MaxFilterLength = 64 << 10
	// MaxFilterDepth is the deepest nesting of parentheses and NOTs.
	MaxFilterDepth = 64
)

// ErrInvalidFilter is wrapped by every error Parse returns.
var ErrInvalidFilter = wpcerr.New(wpcerr.InvalidArgument, "query: invalid filter")

// FilterError is a filter that does not parse: where and why. It wraps
// ErrInvalidFilter.
type FilterError struct {
	Src string // the filter as given
	Pos int    // 1-based byte column of the problem in Src; len(Src)+1 is its end
	Msg string // what is wrong, without the column
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("%v: column %d: %s", ErrInvalidFilter, e.Pos, e.Msg)
}

func (e *FilterError) Unwrap() error { return ErrInvalidFilter }

// newError reports a problem at byte offset off (0-based) of src.
func newError(src string, off int, format string, args ...any) *FilterError {
	return &FilterError{Src: src, Pos: off + 1, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses a filter (see the package documentation for the grammar). A
// malformed filter gets a *FilterError.
func Parse(src string) (Expr, error) {
	if len(src) > MaxFilterLength {
		return Expr{}, newError(src, MaxFilterLength, "filter is %d bytes, more than the maximum of %d", len(src), MaxFilterLength)
	}
	if !utf8.ValidString(src) {
		off := 0
		for off < len(src) {
			r, n := utf8.DecodeRuneInString(src[off:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			off += n
		}
		return Expr{}, newError(src, off, "invalid UTF-8")
	}
	p := &parser{lex: lexer{src: src}}
	if err := p.advance(); err != nil {
		return Expr{}, err
	}
	if p.tok.kind == tokEOF {
		return Expr{}, newError(src, 0, "empty filter")
	}
	root, err := p.parseOr()
	if err != nil {
		return Expr{}, err
	}
	switch p.tok.kind {
	case tokEOF:
	case tokRParen:
		return Expr{}, p.errorf(p.tok.pos, `unexpected ")" with no "(" to close`)
	default:
		return Expr{}, p.expected("AND, OR or the end of the filter")
	}
	e := Expr{root: root, canon: format(root)}
	if len(e.canon) > MaxFilterLength {
		return Expr{}, newError(src, 0, "filter's canonical form is %d bytes, more than the maximum of %d", len(e.canon), MaxFilterLength)
	}
	return e, nil
}

// parser is a recursive-descent parser with one token of lookahead.
type parser struct {
	lex   lexer
	prev  token // the last token consumed; kind tokEOF before the first
	tok   token // the current token
	depth int   // nesting of parentheses and NOTs
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.prev, p.tok = p.tok, t
	return nil
}

func (p *parser) errorf(off int, format string, args ...any) error {
	return newError(p.lex.src, off, format, args...)
}

// expected reports that the current token is not what the grammar needs.
func (p *parser) expected(what string) error {
	msg := "expected " + what
	if p.prev.kind != tokEOF {
		msg += " after " + describe(p.prev)
	}
	msg += ", found " + describe(p.tok)
	return p.errorf(p.tok.pos, "%s", msg)
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxFilterDepth {
		return p.errorf(p.tok.pos, "filter nests parentheses and NOTs deeper than %d", MaxFilterDepth)
	}
	return nil
}

// parseOr parses: and { OR and }.
func (p *parser) parseOr() (node, error) {
	x, err := p.parseAnd()
	if err != nil || p.tok.kind != tokOr {
		return x, err
	}
	xs := []node{x}
	for p.tok.kind == tokOr {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if x, err = p.parseAnd(); err != nil {
			return nil, err
		}
		xs = append(xs, x)
	}
	return &orNode{xs}, nil
}

// parseAnd parses: unary { AND unary }.
func (p *parser) parseAnd() (node, error) {
	x, err := p.parseUnary()
	if err != nil || p.tok.kind != tokAnd {
		return x, err
	}
	xs := []node{x}
	for p.tok.kind == tokAnd {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if x, err = p.parseUnary(); err != nil {
			return nil, err
		}
		xs = append(xs, x)
	}
	return &andNode{xs}, nil
}

// parseUnary parses: NOT unary | "(" or ")" | comparison.
func (p *parser) parseUnary() (node, error) {
	switch p.tok.kind {
	case tokNot:
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	case tokLParen:
		open := p.tok
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			return nil, p.expected(fmt.Sprintf(`AND, OR or ")" to close the "(" at column %d`, open.pos+1))
		}
		return x, p.advance()
	case tokIdent, tokString:
		return p.parseComparison()
	}
	err := p.expected(`an attribute name, NOT or "("`)
	if p.tok.kind >= tokAnd {
		fe := err.(*FilterError)
		fe.Msg += fmt.Sprintf(" (a keyword; quote an attribute so named: %s)", quote(p.tok.text))
	}
	return nil, err
}

// parseComparison parses: attr ( op value | CONTAINS value | [NOT] IN "(" value { "," value } ")" ).
func (p *parser) parseComparison() (node, error) {
	attr := p.tok
	name := attr.text
	if attr.kind == tokString {
		name = attr.str
	}
	if name == "" {
		return nil, p.errorf(attr.pos, "empty attribute name")
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tokOp, tokContains:
		op := p.tok.op
		if p.tok.kind == tokContains {
			op = opContains
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		at := p.tok
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		switch _, num := v.(float64); {
		case op == opContains && v == nil:
			return nil, p.errorf(at.pos, "CONTAINS takes a string, number or boolean (a list never holds null), found %s", describe(at))
		case !num && op != opEq && op != opNe && op != opContains:
			return nil, p.errorf(at.pos, "%q compares numbers only, found %s", opText[op], describe(at))
		}
		return &cmpNode{attr: name, op: op, val: v}, nil
	case tokIn:
		return p.parseIn(name, false)
	case tokNot:
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokIn {
			return nil, p.expected("IN")
		}
		return p.parseIn(name, true)
	case tokIdent:
		return nil, p.errorf(p.tok.pos, "unknown operator %q", p.tok.text)
	}
	return nil, p.expected("a comparison (= != < <= > >=), CONTAINS or IN")
}

// parseIn parses the list after IN, the current token.
func (p *parser) parseIn(name string, negated bool) (node, error) {
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokLParen {
		return nil, p.expected(`"("`)
	}
	n := &inNode{attr: name, negated: negated}
	for {
		if err := p.advance(); err != nil {
			return nil, err
		}
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, v)
		switch p.tok.kind {
		case tokComma:
			continue
		case tokRParen:
			return n, p.advance()
		}
		return nil, p.expected(`"," or ")"`)
	}
}

// parseValue parses a literal: string, number, true, false or null (nil).
func (p *parser) parseValue() (any, error) {
	var v any
	switch t := p.tok; t.kind {
	case tokString:
		v = t.str
	case tokNumber:
		v = t.num
	case tokTrue:
		v = true
	case tokFalse:
		v = false
	case tokNull:
		v = nil
	case tokIdent:
		switch strings.ToLower(t.text) {
		case "nan", "inf", "infinity":
			return nil, p.errorf(t.pos, "%s is not a finite number; filters compare finite numbers only", t.text)
		}
		return nil, p.expected(`a value (strings are double-quoted)`)
	default:
		return nil, p.expected("a value")
	}
	return v, p.advance()
}

// describe names a token for an error message.
func describe(t token) string {
	const max = 40
	s := t.text
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	switch t.kind {
	case tokEOF:
		return "the end of the filter"
	case tokString:
		return "string " + s
	}
	return strconv.Quote(s)
}

type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokIdent          // attribute name
	tokString         // double-quoted string
	tokNumber         // number literal
	tokOp             // = != < <= > >=
	tokLParen         // (
	tokRParen         // )
	tokComma          // ,
	// Keywords, case-insensitive; tokAnd must stay the first.
	tokAnd
	tokOr
	tokNot
	tokIn
	tokTrue
	tokFalse
	tokNull
	tokContains
)

var keywords = map[string]tokKind{
	"and": tokAnd, "or": tokOr, "not": tokNot, "in": tokIn, "true": tokTrue, "false": tokFalse,
	"null": tokNull, "contains": tokContains,
}

// keyword returns the keyword kind of an identifier, or tokIdent.
func keyword(s string) tokKind {
	if len(s) <= len("contains") {
		if k, ok := keywords[strings.ToLower(s)]; ok {
			return k
		}
	}
	return tokIdent
}

type token struct {
	kind tokKind
	pos  int    // byte offset in the source
	text string // the source text
	str  string // tokString: the decoded value
	num  float64
	op   cmpOp
}

// lexer splits a filter into tokens. The source is valid UTF-8.
type lexer struct {
	src string
	pos int
}

func (l *lexer) next() (token, error) {
	src := l.src
	for l.pos < len(src) && isSpace(src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start == len(src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	single := func(k tokKind) (token, error) {
		l.pos++
		return token{kind: k, pos: start, text: src[start:l.pos]}, nil
	}
	digitAt := func(i int) bool { return i < len(src) && isDigit(src[i]) }
	switch c := src[start]; {
	case c == '(':
		return single(tokLParen)
	case c == ')':
		return single(tokRParen)
	case c == ',':
		return single(tokComma)
	case c == '"':
		return l.lexString()
	case isOpByte(c):
		for l.pos < len(src) && isOpByte(src[l.pos]) {
			l.pos++
		}
		text := src[start:l.pos]
		for op, s := range opText {
			if s == text {
				return token{kind: tokOp, pos: start, text: text, op: cmpOp(op)}, nil
			}
		}
		return token{}, newError(src, start, "unknown operator %q", text)
	case isIdentStart(c):
		for l.pos < len(src) && isIdentByte(src[l.pos]) {
			l.pos++
		}
		text := src[start:l.pos]
		return token{kind: keyword(text), pos: start, text: text}, nil
	case isDigit(c),
		c == '.' && digitAt(start+1),
		(c == '-' || c == '+') && (digitAt(start+1) || src[start+1:] != "" && src[start+1] == '.' && digitAt(start+2)):
		return l.lexNumber()
	}
	r, _ := utf8.DecodeRuneInString(src[start:])
	return token{}, newError(src, start, "unexpected character %q", string(r))
}

// lexNumber scans a number: what strconv.ParseFloat accepts (JSON numbers,
// Go float literals) as long as it is finite. The token runs over letters,
// digits, '_', '.' and an exponent's sign, so "12abc" is one bad number
// rather than a number followed by a name.
func (l *lexer) lexNumber() (token, error) {
	src, start := l.src, l.pos
	i := start + 1
	for i < len(src) {
		c := src[i]
		if isIdentStart(c) || isDigit(c) || c == '.' ||
			(c == '+' || c == '-') && (src[i-1]|0x20 == 'e' || src[i-1]|0x20 == 'p') {
			i++
			continue
		}
		break
	}
	text := src[start:i]
	f, err := strconv.ParseFloat(text, 64)
	if errors.Is(err, strconv.ErrRange) {
		return token{}, newError(src, start, "number %s is out of range", text)
	}
	if err != nil || f != f || f-f != 0 { // not finite
		return token{}, newError(src, start, "invalid number %q", text)
	}
	l.pos = i
	return token{kind: tokNumber, pos: start, text: text, num: f}, nil
}

// lexString scans a double-quoted string with JSON escapes.
func (l *lexer) lexString() (token, error) {
	src, start := l.src, l.pos
	var buf []byte // the decoded value, once an escape is seen
	escaped := false
	for i := start + 1; i < len(src); {
		c := src[i]
		switch {
		case c == '"':
			l.pos = i + 1
			str := src[start+1 : i]
			if escaped {
				str = string(buf)
			}
			return token{kind: tokString, pos: start, text: src[start:l.pos], str: str}, nil
		case c < 0x20:
			return token{}, newError(src, i, "control character %U in string; write it as an escape such as \\n", rune(c))
		case c != '\\':
			if escaped {
				buf = append(buf, c)
			}
			i++
			continue
		}
		if !escaped {
			buf = append(buf, src[start+1:i]...)
			escaped = true
		}
		if i+1 == len(src) {
			break
		}
		switch e := src[i+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := l.hex4(i)
			if err != nil {
				return token{}, err
			}
			if utf16.IsSurrogate(r) {
				lo := rune(-1)
				if r < 0xdc00 && strings.HasPrefix(src[i+6:], `\u`) {
					if lo, err = l.hex4(i + 6); err != nil {
						return token{}, err
					}
				}
				if r = utf16.DecodeRune(r, lo); r == utf8.RuneError {
					return token{}, newError(src, i, "invalid escape %q in string: a surrogate without its pair", src[i:i+6])
				}
				i += 6
			}
			buf = utf8.AppendRune(buf, r)
			i += 4
		default:
			_, n := utf8.DecodeRuneInString(src[i+1:])
			return token{}, newError(src, i, "invalid escape %q in string", src[i:i+1+n])
		}
		i += 2
	}
	return token{}, newError(src, start, "unterminated string")
}

// hex4 decodes the \uXXXX escape at offset i.
func (l *lexer) hex4(i int) (rune, error) {
	j := i + 2
	for j < i+6 && j < len(l.src) && isHex(l.src[j]) {
		j++
	}
	if j < i+6 {
		return 0, newError(l.src, i, `invalid escape %q in string: \u needs four hex digits`, l.src[i:j])
	}
	v, _ := strconv.ParseUint(l.src[i+2:j], 16, 32)
	return rune(v), nil
}

func isSpace(c byte) bool      { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isHex(c byte) bool        { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }
func isOpByte(c byte) bool     { return c == '=' || c == '!' || c == '<' || c == '>' }
func isIdentStart(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' || c == '_' }
func isIdentByte(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == '.' || c == '-' }
