package encoder

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wpcdb/wpcdb/wpcsim"
)

// TextOptions configure the "text" encoder. The zero value is valid: 256
// dimensions, character 3- to 5-grams, at most 64 points, k1 1.2, seed 0.
//
// Text is cut into words — maximal runs of Unicode letters, digits and
// combining marks — and lowercased. Each distinct word is one point:
//
//	x(t) = ½·h("w:" + t) + (1/√G) Σ_g h("g:" + g)
//
// over the G character n-grams g of "<t>" (NGramMin ≤ n ≤ NGramMax), where
// h(f) is a seeded sparse random sign vector of unit norm (4 coordinates of
// ±1/2 picked by hashing f with the seed). Words sharing n-grams ("encode",
// "encoder", "encoding") land near each other; unrelated words are nearly
// orthogonal (the word feature has half weight so that shared n-grams
// dominate the similarity of related spellings). Its weight is IDF(t) · (k1 + 1)·tf / (k1 + tf): the BM25
// inverse document frequency from a Model fitted on a corpus (1 without
// one) times the term frequency tf in this text, saturated. The MaxPoints
// heaviest words are kept (ties: first occurrence first).
type TextOptions struct {
	// Dim is the point dimension (default 256).
	Dim int `json:"dim"`
	// NGramMin and NGramMax bound the character n-grams (default 3 and 5).
	NGramMin int `json:"ngram_min"`
	NGramMax int `json:"ngram_max"`
	// NoNGrams uses the word feature alone (spellings no longer share).
	NoNGrams bool `json:"no_ngrams,omitempty"`
	// MaxPoints is the most points per cloud (default 64).
	MaxPoints int `json:"max_points"`
	// K1 is the term frequency saturation (default 1.2, as BM25).
	K1 float64 `json:"k1"`
	// Seed seeds the hashed features (default 0).
	Seed uint64 `json:"seed,omitempty"`
	// Lines makes every non-blank line of a file an input of its own, with
	// ID "path:line" (1-based); otherwise a file is one input, ID its path.
	Lines bool `json:"lines,omitempty"`
	// MinDF drops tokens seen in fewer documents from a fitted IDF (default
	// 2), which keeps the model small.
	MinDF int `json:"min_df,omitempty"`
}

// WithDefaults returns o with unset fields replaced by their defaults.
func (o TextOptions) WithDefaults() TextOptions {
	if o.Dim == 0 {
		o.Dim = 256
	}
	if o.NGramMin == 0 {
		o.NGramMin = 3
	}
	if o.NGramMax == 0 {
		o.NGramMax = max(5, o.NGramMin)
	}
	if o.MaxPoints == 0 {
		o.MaxPoints = 64
	}
	if o.K1 == 0 {
		o.K1 = 1.2
	}
	if o.MinDF == 0 {
		o.MinDF = 2
	}
	return o
}

// Validate checks o after defaults and reports every problem.
func (o TextOptions) Validate() error {
	o = o.WithDefaults()
	var bad []string
	if o.Dim < 4 || o.Dim > 1<<16 {
		bad = append(bad, fmt.Sprintf("dim %d outside [4, 65536]", o.Dim))
	}
	if o.NGramMin < 1 || o.NGramMax < o.NGramMin || o.NGramMax > 16 {
		bad = append(bad, fmt.Sprintf("n-gram range [%d, %d] must satisfy 1 ≤ min ≤ max ≤ 16", o.NGramMin, o.NGramMax))
	}
	if o.MaxPoints < 1 {
		bad = append(bad, fmt.Sprintf("max points %d must be positive", o.MaxPoints))
	}
	if !(o.K1 > 0) || math.IsInf(o.K1, 0) {
		bad = append(bad, fmt.Sprintf("k1 %g must be positive and finite", o.K1))
	}
	if o.MinDF < 1 {
		bad = append(bad, fmt.Sprintf("min df %d must be positive", o.MinDF))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: text: %s", ErrOptions, strings.Join(bad, "; "))
	}
	return nil
}

// Text is the "text" encoder. Safe for concurrent use.
type Text struct {
	o   TextOptions
	idf *IDF
}

// NewText makes a text encoder; model, when not nil, gives the IDF.
func NewText(o TextOptions, model *Model) (*Text, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	t := &Text{o: o.WithDefaults()}
	if model != nil {
		if model.IDF == nil {
			return nil, fmt.Errorf("%w: text: the model has no IDF", ErrOptions)
		}
		t.idf = model.IDF
	}
	return t, nil
}

// Name is "text".
func (t *Text) Name() string { return "text" }

// Dim is TextOptions.Dim.
func (t *Text) Dim() int { return t.o.Dim }

// Options returns the options with defaults filled in.
func (t *Text) Options() TextOptions { return t.o }

// Tokenize splits s into lowercased words: maximal runs of Unicode letters,
// digits and marks. Invalid UTF-8 separates words.
func Tokenize(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		word := r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r))
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0:
			out = append(out, strings.ToLower(s[start:i]))
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, strings.ToLower(s[start:]))
	}
	return out
}

// Read reads a UTF-8 text file: one input, or one per non-blank line.
func (t *Text) Read(path string, fn func(Input) error) error {
	if !t.o.Lines {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInput, err)
		}
		return fn(Input{ID: path, Data: string(b)})
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if err := fn(Input{ID: path + ":" + strconv.Itoa(line), Data: sc.Text()}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return inputErr(path, "%v", err)
	}
	return nil
}

// EncodeBatch encodes texts in parallel.
func (t *Text) EncodeBatch(ins []Input) ([]wpcsim.Cloud, error) {
	return encodeBatch(ins, t.Encode)
}

func textOf(in Input) (string, error) {
	switch v := in.Data.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", inputErr(in.ID, "text encoder wants a string, got %T", in.Data)
}

// Encode encodes one text.
func (t *Text) Encode(in Input) (wpcsim.Cloud, error) {
	s, err := textOf(in)
	if err != nil {
		return wpcsim.Cloud{}, err
	}
	toks := Tokenize(s)
	if len(toks) == 0 {
		return wpcsim.Cloud{}, inputErr(in.ID, "no words in the text")
	}
	type term struct {
		tok   string
		tf    int
		first int
		w     float64
	}
	index := map[string]int{}
	var terms []term
	for i, tok := range toks {
		if k, ok := index[tok]; ok {
			terms[k].tf++
			continue
		}
		index[tok] = len(terms)
		terms = append(terms, term{tok: tok, tf: 1, first: i})
	}
	k1 := t.o.K1
	for i := range terms {
		tf := float64(terms[i].tf)
		terms[i].w = t.idf.Weight(terms[i].tok) * (k1 + 1) * tf / (k1 + tf)
	}
	if len(terms) > t.o.MaxPoints {
		slices.SortStableFunc(terms, func(a, b term) int {
			switch {
			case a.w > b.w:
				return -1
			case a.w < b.w:
				return 1
			}
			return a.first - b.first
		})
		terms = terms[:t.o.MaxPoints]
		slices.SortFunc(terms, func(a, b term) int { return a.first - b.first })
	}
	c := wpcsim.Cloud{Dim: t.o.Dim, Weights: make([]float32, 0, len(terms)), Points: make([]float32, 0, len(terms)*t.o.Dim)}
	for _, tm := range terms {
		c.Weights = append(c.Weights, float32(tm.w))
		c.Points = t.appendWordVector(c.Points, tm.tok)
	}
	c = dropZeroPoints(c)
	if c.Len() == 0 {
		return wpcsim.Cloud{}, inputErr(in.ID, "every word has weight 0")
	}
	return c, nil
}

// WordVector returns the point of one (lowercased) word.
func (t *Text) WordVector(word string) []float32 {
	return t.appendWordVector(nil, word)
}

func (t *Text) appendWordVector(dst []float32, word string) []float32 {
	base := len(dst)
	dst = append(dst, make([]float32, t.o.Dim)...)
	v := dst[base:]
	t.addFeature(v, "w:"+word, 0.5)
	if t.o.NoNGrams {
		return dst
	}
	r := []rune("<" + word + ">")
	var grams []string
	for n := t.o.NGramMin; n <= t.o.NGramMax; n++ {
		for i := 0; i+n <= len(r); i++ {
			grams = append(grams, string(r[i:i+n]))
		}
	}
	if len(grams) == 0 {
		return dst
	}
	s := float32(1 / math.Sqrt(float64(len(grams))))
	for _, g := range grams {
		t.addFeature(v, "g:"+g, s)
	}
	return dst
}

// addFeature adds scale·h(f) to v: 4 coordinates of ±scale/2 chosen by a
// seeded 64-bit hash of f.
func (t *Text) addFeature(v []float32, f string, scale float32) {
	h := fnv1a(t.o.Seed, f)
	for k := 0; k < 4; k++ {
		h = splitmix64(h)
		i := int(h>>1) % len(v)
		if h&1 == 0 {
			v[i] += scale / 2
		} else {
			v[i] -= scale / 2
		}
	}
}

func fnv1a(seed uint64, s string) uint64 {
	h := uint64(14695981039346656037) ^ splitmix64(seed)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// NewFitter starts fitting the IDF: every input added is one document.
func (t *Text) NewFitter() (Fitter, error) {
	return &idfFitter{t: t, df: map[string]int{}}, nil
}

type idfFitter struct {
	t    *Text
	docs int
	df   map[string]int
}

func (f *idfFitter) Add(in Input) error {
	s, err := textOf(in)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, tok := range Tokenize(s) {
		if !seen[tok] {
			seen[tok] = true
			f.df[tok]++
		}
	}
	f.docs++
	return nil
}

func (f *idfFitter) Model() (*Model, error) {
	if f.docs == 0 {
		return nil, fmt.Errorf("%w: text: no documents to fit the IDF on", ErrInput)
	}
	idf := &IDF{Docs: f.docs, MinDF: f.t.o.MinDF, DF: map[string]int{}}
	for tok, n := range f.df {
		if n >= idf.MinDF {
			idf.DF[tok] = n
		}
	}
	return &Model{Encoder: "text", IDF: idf}, nil
}
