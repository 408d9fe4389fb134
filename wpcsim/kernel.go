package wpcsim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// TermKind is a base kernel of PAPER.md.
type TermKind uint8

const (
	// Linear is k(a, b) = <a, b>.
	Linear TermKind = iota + 1
	// Gaussian is k(a, b) = exp(-||a-b||² / (2σ²)); Term.Param is σ.
	Gaussian
	// IMQ is the inverse multiquadric k(a, b) = c / sqrt(c² + ||a-b||²);
	// Term.Param is c.
	IMQ
	// MaxSim is ColBERT's late interaction, c·Σ_i v_i·max_j <q̂_i, x̂_j>. It
	// is a kernel spec on its own and is never summed with other terms.
	MaxSim
)

// String returns the name used in kernel specs.
func (k TermKind) String() string {
	switch k {
	case Linear:
		return "linear"
	case Gaussian:
		return "gaussian"
	case IMQ:
		return "imq"
	case MaxSim:
		return "maxsim"
	}
	return fmt.Sprintf("TermKind(%d)", uint8(k))
}

// hasParam reports whether the kind takes a parenthesized parameter.
func (k TermKind) hasParam() bool { return k == Gaussian || k == IMQ }

// Term is one α·k_t of a kernel sum.
type Term struct {
	Alpha float64  // weight of the term, > 0
	Kind  TermKind // base kernel
	Param float64  // σ for Gaussian, c for IMQ, unused (0) otherwise
}

// Kernel is a parsed kernel spec: a sum of positively weighted base kernels,
// or MaxSim alone. The zero Kernel means "unset"; Config.WithDefaults
// replaces it by DefaultKernel. A Kernel is an immutable value once built;
// do not modify Terms after it has been handed to New.
type Kernel struct {
	Terms []Term
}

// Limits of a kernel spec, checked by ParseKernel and Kernel.Validate. Each
// term multiplies the cost of φ and of scoring, so their number is small;
// σ and c below MinKernelParam overflow 1/σ² or underflow c² in float32
// and turn an identical pair's score into NaN (0·∞), and values past
// MaxKernelParam or MaxKernelAlpha overflow sums of squares. α below
// MinKernelAlpha underflows in the float32 first stage (φ carries √α): at
// 1e-300 every φ is 0, the index's cosine is 0/0 = NaN and a linear
// kernel's scores, exact from φ, come back as 0; at 1e-45 the index ranks
// wrongly; at 1e-30 it still agreed with the exact scan. A term weighted
// under 1e-6 of another is below float32's precision anyway, and the
// scores of a single term scale with α without changing the order, so
// 1e-6 mirrors MaxKernelAlpha with a wide margin.
const (
	MaxKernelTerms     = 16
	MinKernelParam     = 1e-3
	MaxKernelParam     = 1e6
	MinKernelAlpha     = 1e-6
	MaxKernelAlpha     = 1e6
	MaxKernelSpecBytes = 1024
)

// DefaultKernelSpec is the kernel of the paper's released model.
const DefaultKernelSpec = "0.667*linear+0.333*gaussian(0.5)"

// DefaultKernel returns the parsed DefaultKernelSpec.
func DefaultKernel() Kernel {
	return Kernel{Terms: []Term{
		{Alpha: 0.667, Kind: Linear},
		{Alpha: 0.333, Kind: Gaussian, Param: 0.5},
	}}
}

// IsZero reports whether k is the unset kernel.
func (k Kernel) IsZero() bool { return len(k.Terms) == 0 }

// IsMaxSim reports whether k is the MaxSim kernel.
func (k Kernel) IsMaxSim() bool { return len(k.Terms) == 1 && k.Terms[0].Kind == MaxSim }

// String prints the canonical spec: terms in their given order, joined by
// "+", each written α*name or α*name(param), with α omitted when it is 1 and
// every number in Go's shortest round-tripping form. ParseKernel(k.String())
// returns k exactly.
func (k Kernel) String() string {
	var b strings.Builder
	for i, t := range k.Terms {
		if i > 0 {
			b.WriteByte('+')
		}
		if t.Alpha != 1 {
			b.WriteString(strconv.FormatFloat(t.Alpha, 'g', -1, 64))
			b.WriteByte('*')
		}
		b.WriteString(t.Kind.String())
		if t.Kind.hasParam() {
			b.WriteByte('(')
			b.WriteString(strconv.FormatFloat(t.Param, 'g', -1, 64))
			b.WriteByte(')')
		}
	}
	return b.String()
}

// Validate checks that every α, σ and c is positive and finite, that the
// kinds are known, and that MaxSim stands alone.
func (k Kernel) Validate() error {
	if p := k.problem(); p != "" {
		return fmt.Errorf("%w: %s", ErrInvalidKernel, p)
	}
	return nil
}

// problem is what Validate reports, "" when k is valid.
func (k Kernel) problem() string {
	if len(k.Terms) == 0 {
		return "kernel has no terms"
	}
	if len(k.Terms) > MaxKernelTerms {
		return fmt.Sprintf("%d terms exceeds the maximum of %d", len(k.Terms), MaxKernelTerms)
	}
	for i, t := range k.Terms {
		switch t.Kind {
		case Linear, Gaussian, IMQ:
		case MaxSim:
			if len(k.Terms) > 1 {
				return fmt.Sprintf("term %d: maxsim cannot be summed with other terms", i)
			}
		default:
			return fmt.Sprintf("term %d: unknown kind %d", i, t.Kind)
		}
		if !(t.Alpha >= MinKernelAlpha) || !(t.Alpha <= MaxKernelAlpha) {
			return fmt.Sprintf("term %d (%s): α must be in [%g, %g], got %v", i, t.Kind, MinKernelAlpha, float64(MaxKernelAlpha), t.Alpha)
		}
		if t.Kind.hasParam() && !(t.Param >= MinKernelParam && t.Param <= MaxKernelParam) {
			return fmt.Sprintf("term %d (%s): %s must be in [%g, %g], got %v", i, t.Kind, paramName(t.Kind), MinKernelParam, float64(MaxKernelParam), t.Param)
		}
		if !t.Kind.hasParam() && t.Param != 0 {
			return fmt.Sprintf("term %d (%s): takes no parameter, got %v", i, t.Kind, t.Param)
		}
	}
	return ""
}

func paramName(k TermKind) string {
	if k == Gaussian {
		return "σ"
	}
	return "c"
}

// SpecError is a kernel spec that does not parse. Column is the 1-based
// byte column of the offending token in Spec.
type SpecError struct {
	Spec   string
	Column int
	Msg    string
}

func (e *SpecError) Error() string {
	spec := e.Spec
	if len(spec) > 80 { // never echo a huge input whole
		return fmt.Sprintf("wpcsim: kernel spec %q… (%d bytes): column %d: %s", strings.ToValidUTF8(spec[:64], ""), len(spec), e.Column, e.Msg)
	}
	return fmt.Sprintf("wpcsim: kernel spec %q: column %d: %s", spec, e.Column, e.Msg)
}

// Unwrap makes errors.Is(err, ErrInvalidKernel) true.
func (e *SpecError) Unwrap() error { return ErrInvalidKernel }

// ParseKernel parses a kernel spec:
//
//	spec   = term { "+" term } | [ number "*" ] "maxsim"
//	term   = [ number "*" ] base
//	base   = "linear" | "gaussian" "(" number ")" | "imq" "(" number ")"
//
// Names are case-insensitive, whitespace is allowed between tokens, numbers
// use Go's float syntax. α must be in [MinKernelAlpha, MaxKernelAlpha], σ and c in
// [MinKernelParam, MaxKernelParam]; at most MaxKernelTerms terms and
// MaxKernelSpecBytes bytes.
// Errors are *SpecError and name the column of the offending token.
func ParseKernel(spec string) (Kernel, error) {
	p := specParser{src: spec}
	if len(spec) > MaxKernelSpecBytes {
		return Kernel{}, p.errAt(MaxKernelSpecBytes, fmt.Sprintf("spec of %d bytes exceeds the maximum of %d", len(spec), MaxKernelSpecBytes))
	}
	var k Kernel
	for {
		if len(k.Terms) == MaxKernelTerms {
			return Kernel{}, p.errAt(p.pos, fmt.Sprintf("more than %d terms", MaxKernelTerms))
		}
		t, err := p.term()
		if err != nil {
			return Kernel{}, err
		}
		if t.Kind == MaxSim && len(k.Terms) > 0 {
			return Kernel{}, p.errAt(p.lastStart, "maxsim cannot be summed with other terms")
		}
		if t.Kind != MaxSim && k.IsMaxSim() {
			return Kernel{}, p.errAt(p.lastStart, "maxsim cannot be summed with other terms")
		}
		k.Terms = append(k.Terms, t)
		p.skipSpace()
		if p.pos == len(p.src) {
			return k, nil
		}
		if p.src[p.pos] != '+' {
			return Kernel{}, p.errAt(p.pos, fmt.Sprintf("expected \"+\" or end of spec, found %q", p.peekToken()))
		}
		p.pos++
	}
}

type specParser struct {
	src       string
	pos       int
	lastStart int // start of the term being parsed
}

func (p *specParser) errAt(pos int, msg string) *SpecError {
	return &SpecError{Spec: p.src, Column: pos + 1, Msg: msg}
}

func (p *specParser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peekToken returns the token at pos for error messages.
func (p *specParser) peekToken() string {
	if p.pos >= len(p.src) {
		return "end of spec"
	}
	end := p.pos + 1
	for end < len(p.src) && isWordByte(p.src[end]) && isWordByte(p.src[p.pos]) {
		end++
	}
	return p.src[p.pos:end]
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.'
}

func isNumberStart(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+'
}

// number lexes a float at pos; what is a positive finite value, named in
// errors (e.g. "α").
func (p *specParser) number(what string) (float64, error) {
	start := p.pos
	i := p.pos
	if i < len(p.src) && (p.src[i] == '+' || p.src[i] == '-') {
		i++
	}
	for i < len(p.src) {
		c := p.src[i]
		if c >= '0' && c <= '9' || c == '.' || c == '_' {
			i++
			continue
		}
		if (c == 'e' || c == 'E') && i+1 < len(p.src) {
			i++
			if p.src[i] == '+' || p.src[i] == '-' {
				i++
			}
			continue
		}
		break
	}
	tok := p.src[start:i]
	if tok == "" {
		return 0, p.errAt(start, fmt.Sprintf("expected a number for %s, found %q", what, p.peekToken()))
	}
	v, err := strconv.ParseFloat(tok, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, p.errAt(start, fmt.Sprintf("%s: %q is not a finite number", what, tok))
	}
	if v <= 0 {
		return 0, p.errAt(start, fmt.Sprintf("%s must be > 0, got %s", what, tok))
	}
	lo, hi := MinKernelParam, float64(MaxKernelParam)
	if what == "α" {
		lo, hi = MinKernelAlpha, MaxKernelAlpha
	}
	if v < lo || v > hi {
		return 0, p.errAt(start, fmt.Sprintf("%s must be in [%g, %g], got %s", what, lo, hi, tok))
	}
	p.pos = i
	return v, nil
}

func (p *specParser) term() (Term, error) {
	p.skipSpace()
	p.lastStart = p.pos
	t := Term{Alpha: 1}
	if p.pos < len(p.src) && isNumberStart(p.src[p.pos]) {
		a, err := p.number("α")
		if err != nil {
			return Term{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != '*' {
			return Term{}, p.errAt(p.pos, fmt.Sprintf("expected \"*\" after α, found %q", p.peekToken()))
		}
		p.pos++
		p.skipSpace()
		t.Alpha = a
	}
	start := p.pos
	for p.pos < len(p.src) && (p.src[p.pos] >= 'a' && p.src[p.pos] <= 'z' || p.src[p.pos] >= 'A' && p.src[p.pos] <= 'Z') {
		p.pos++
	}
	name := strings.ToLower(p.src[start:p.pos])
	switch name {
	case "linear":
		t.Kind = Linear
	case "gaussian":
		t.Kind = Gaussian
	case "imq":
		t.Kind = IMQ
	case "maxsim":
		t.Kind = MaxSim
	case "":
		p.pos = start
		return Term{}, p.errAt(start, fmt.Sprintf("expected a kernel (linear, gaussian(σ), imq(c) or maxsim), found %q", p.peekToken()))
	default:
		return Term{}, p.errAt(start, fmt.Sprintf("unknown kernel %q (want linear, gaussian(σ), imq(c) or maxsim)", p.src[start:p.pos]))
	}
	p.skipSpace()
	hasParen := p.pos < len(p.src) && p.src[p.pos] == '('
	if !t.Kind.hasParam() {
		if hasParen {
			return Term{}, p.errAt(p.pos, fmt.Sprintf("%s takes no parameter", name))
		}
		return t, nil
	}
	if !hasParen {
		return Term{}, p.errAt(p.pos, fmt.Sprintf("%s needs a parameter: %s(%s)", name, name, paramName(t.Kind)))
	}
	p.pos++
	p.skipSpace()
	v, err := p.number(paramName(t.Kind))
	if err != nil {
		return Term{}, err
	}
	t.Param = v
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != ')' {
		return Term{}, p.errAt(p.pos, fmt.Sprintf("expected \")\", found %q", p.peekToken()))
	}
	p.pos++
	return t, nil
}
