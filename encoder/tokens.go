package encoder

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/internal/safetensors"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Tokens is one input of the "tokens" encoder: T tokens of D features each,
// row-major, and optionally a weight per token (nil: every weight 1).
type Tokens struct {
	T, D     int
	Features []float32
	Weights  []float32
}

// TokensOptions configure the "tokens" encoder, which brings a model of the
// user's own: its per-token features, a .npy of shape (N, T, D_in) (or
// (T, D_in), one input), become N clouds. The zero value is valid: each
// token a point as it is, weight 1.
//
// With a head (HeadProj and HeadWeight, or Head), each token x becomes the
// point xᵀP (P of shape (D_in, d)) with the weight 100·tanh((xᵀu + b)/100),
// the WPSE head of PAPER.md. Tokens whose features are all zero have no
// direction and are left out, as are tokens of weight 0.
//
// With MaxPoints, a cloud of more points is compressed by weighted k-means
// (see Compress), and Validate-style checks hold for what comes out.
type TokensOptions struct {
	// Lengths is a .npy of shape (N,), integers: the number of real tokens
	// of each input; the rest of its T rows is padding (default: all T).
	Lengths string `json:"lengths,omitempty"`
	// Weights is a .npy of shape (N, T): a weight per token (default 1).
	// Not allowed with a head, which computes the weights.
	Weights string `json:"weights,omitempty"`
	// IDs is a text file, one ID per line (default: the row number).
	IDs string `json:"ids,omitempty"`
	// HeadProj (.npy, (D_in, d)) and HeadWeight (.npy, (D_in,)) are the
	// WPSE head; HeadBias is the weight's bias b (default 0).
	HeadProj   string  `json:"head_proj,omitempty"`
	HeadWeight string  `json:"head_weight,omitempty"`
	HeadBias   float64 `json:"head_bias,omitempty"`
	// Head is a .safetensors file holding the head as tensors "proj"
	// (D_in, d), "weight" (D_in,) and optionally "bias" (1,) or ().
	Head string `json:"head,omitempty"`
	// InputDim, when set, is the required D_in (without a head, also Dim).
	InputDim int `json:"input_dim,omitempty"`
	// MaxPoints compresses clouds of more points to at most this many
	// (0: no compression).
	MaxPoints int `json:"max_points,omitempty"`
	// Compress configures the compression.
	Compress CompressOptions `json:"compress"`
}

// head is a loaded WPSE head.
type head struct {
	din, d int
	proj   []float32 // din×d
	u      []float32 // din
	bias   float32
}

// Tokens is the "tokens" encoder. Safe for concurrent use.
type TokensEncoder struct {
	o    TokensOptions
	head *head
}

// NewTokens makes a tokens encoder, loading its head.
func NewTokens(o TokensOptions) (*TokensEncoder, error) {
	var bad []string
	if o.MaxPoints < 0 {
		bad = append(bad, fmt.Sprintf("max points %d is negative", o.MaxPoints))
	}
	if o.InputDim < 0 {
		bad = append(bad, fmt.Sprintf("input dim %d is negative", o.InputDim))
	}
	if o.Head != "" && (o.HeadProj != "" || o.HeadWeight != "") {
		bad = append(bad, "give the head as one .safetensors file or as two .npy files, not both")
	}
	if (o.HeadProj == "") != (o.HeadWeight == "") {
		bad = append(bad, "a .npy head needs both the projection and the weight vector")
	}
	hasHead := o.Head != "" || o.HeadProj != ""
	if hasHead && o.Weights != "" {
		bad = append(bad, "per-token weights come from the head: leave out the weights file")
	}
	if math.IsNaN(o.HeadBias) || math.IsInf(o.HeadBias, 0) {
		bad = append(bad, "head bias must be finite")
	}
	if p := o.Compress.problem(); p != "" {
		bad = append(bad, p)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: tokens: %s", ErrOptions, strings.Join(bad, "; "))
	}
	e := &TokensEncoder{o: o}
	if hasHead {
		h, err := loadHead(o)
		if err != nil {
			return nil, err
		}
		if o.InputDim > 0 && o.InputDim != h.din {
			return nil, fmt.Errorf("%w: tokens: the head takes %d input features, input dim is %d", ErrOptions, h.din, o.InputDim)
		}
		e.head = h
	}
	return e, nil
}

func loadHead(o TokensOptions) (*head, error) {
	var proj, u safetensors.Tensor
	h := &head{bias: float32(o.HeadBias)}
	if o.Head != "" {
		var err error
		if proj, err = safetensors.Read(o.Head, "proj"); err != nil {
			return nil, fmt.Errorf("%w: tokens head: %v", ErrOptions, err)
		}
		if u, err = safetensors.Read(o.Head, "weight"); err != nil {
			return nil, fmt.Errorf("%w: tokens head: %v", ErrOptions, err)
		}
		if b, err := safetensors.Read(o.Head, "bias"); err == nil {
			if len(b.Data) != 1 {
				return nil, fmt.Errorf("%w: tokens head %s: bias has %d values, want 1", ErrOptions, o.Head, len(b.Data))
			}
			h.bias = b.Data[0]
		}
	} else {
		var err error
		if proj, err = readNPY(o.HeadProj); err != nil {
			return nil, err
		}
		if u, err = readNPY(o.HeadWeight); err != nil {
			return nil, err
		}
	}
	if len(proj.Shape) != 2 {
		return nil, fmt.Errorf("%w: tokens head: projection has shape %v, want (D_in, d)", ErrOptions, proj.Shape)
	}
	h.din, h.d = proj.Shape[0], proj.Shape[1]
	if len(u.Data) != h.din || len(u.Shape) > 2 {
		return nil, fmt.Errorf("%w: tokens head: weight vector has shape %v, want (%d,) to match the projection (%d, %d) — a torch.nn.Linear weight is (out, in): transpose the projection", ErrOptions, u.Shape, h.din, h.din, h.d)
	}
	h.proj, h.u = proj.Data, u.Data
	for _, v := range append(append([]float32(nil), h.proj...), h.u...) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: tokens head: a value is NaN or infinite", ErrOptions)
		}
	}
	return h, nil
}

func readNPY(path string) (safetensors.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return safetensors.Tensor{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		return safetensors.Tensor{}, fmt.Errorf("%w: %s: %v", ErrInput, path, err)
	}
	if err := r.CheckFloat(); err != nil {
		return safetensors.Tensor{}, fmt.Errorf("%w: %s: %v", ErrInput, path, err)
	}
	n, _ := r.Header.Len()
	data := make([]float32, n)
	if err := r.ReadFloats(data); err != nil {
		return safetensors.Tensor{}, fmt.Errorf("%w: %s: %v", ErrInput, path, err)
	}
	if err := r.Done(); err != nil {
		return safetensors.Tensor{}, fmt.Errorf("%w: %s: %v", ErrInput, path, err)
	}
	return safetensors.Tensor{Shape: r.Header.Shape, Data: data}, nil
}

// Name is "tokens".
func (e *TokensEncoder) Name() string { return "tokens" }

// Dim is the head's output dimension d, or without a head InputDim (0: the
// dimension of the input features, whatever it is).
func (e *TokensEncoder) Dim() int {
	if e.head != nil {
		return e.head.d
	}
	return e.o.InputDim
}

// EncodeBatch encodes inputs in parallel.
func (e *TokensEncoder) EncodeBatch(ins []Input) ([]wpcsim.Cloud, error) {
	return encodeBatch(ins, e.Encode)
}

// Encode encodes one input's tokens.
func (e *TokensEncoder) Encode(in Input) (wpcsim.Cloud, error) {
	tk, ok := in.Data.(Tokens)
	if !ok {
		if p, isPtr := in.Data.(*Tokens); isPtr && p != nil {
			tk, ok = *p, true
		}
	}
	if !ok {
		return wpcsim.Cloud{}, inputErr(in.ID, "tokens encoder wants Tokens, got %T", in.Data)
	}
	if tk.T <= 0 || tk.D <= 0 || len(tk.Features) != tk.T*tk.D {
		return wpcsim.Cloud{}, inputErr(in.ID, "%d feature values for %d tokens of %d", len(tk.Features), tk.T, tk.D)
	}
	if tk.Weights != nil && len(tk.Weights) != tk.T {
		return wpcsim.Cloud{}, inputErr(in.ID, "%d weights for %d tokens", len(tk.Weights), tk.T)
	}
	if e.o.InputDim > 0 && tk.D != e.o.InputDim {
		return wpcsim.Cloud{}, inputErr(in.ID, "tokens have %d features, input dim is %d", tk.D, e.o.InputDim)
	}
	for i, v := range tk.Features {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return wpcsim.Cloud{}, inputErr(in.ID, "token %d feature %d is %v", i/tk.D, i%tk.D, v)
		}
	}
	var c wpcsim.Cloud
	if h := e.head; h != nil {
		if tk.D != h.din {
			return wpcsim.Cloud{}, inputErr(in.ID, "tokens have %d features, the head takes %d", tk.D, h.din)
		}
		c = wpcsim.Cloud{Dim: h.d, Weights: make([]float32, tk.T), Points: make([]float32, tk.T*h.d)}
		for t := 0; t < tk.T; t++ {
			x := tk.Features[t*tk.D : (t+1)*tk.D]
			out := c.Points[t*h.d : (t+1)*h.d]
			var s float64
			for k, xv := range x {
				if xv == 0 {
					continue
				}
				s += float64(xv) * float64(h.u[k])
				row := h.proj[k*h.d : (k+1)*h.d]
				for j, p := range row {
					out[j] += xv * p
				}
			}
			c.Weights[t] = float32(100 * math.Tanh((s+float64(h.bias))/100))
		}
	} else {
		c = wpcsim.Cloud{Dim: tk.D, Weights: make([]float32, tk.T), Points: append([]float32(nil), tk.Features...)}
		for t := range c.Weights {
			c.Weights[t] = 1
			if tk.Weights != nil {
				c.Weights[t] = tk.Weights[t]
			}
		}
	}
	for i, w := range c.Weights {
		if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
			return wpcsim.Cloud{}, inputErr(in.ID, "token %d has weight %v", i, w)
		}
	}
	for i, v := range c.Points {
		if math.IsInf(float64(v), 0) {
			return wpcsim.Cloud{}, inputErr(in.ID, "token %d projects to an infinite value (features too large for float32)", i/c.Dim)
		}
	}
	c = dropZeroPoints(c)
	if c.Len() == 0 {
		return wpcsim.Cloud{}, inputErr(in.ID, "every token is zero or has weight 0")
	}
	if e.o.MaxPoints > 0 && c.Len() > e.o.MaxPoints {
		var err error
		if c, err = Compress(c, e.o.MaxPoints, e.o.Compress); err != nil {
			return wpcsim.Cloud{}, inputErr(in.ID, "%v", err)
		}
	}
	return c, nil
}

// Read streams the rows of a features .npy (N, T, D_in), float32 or
// float16, with the options' lengths, weights and IDs files.
func (e *TokensEncoder) Read(path string, fn func(Input) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		return inputErr(path, "%v", err)
	}
	if err := r.CheckFloat(); err != nil {
		return inputErr(path, "%v", err)
	}
	shape := r.Header.Shape
	var n, t, d int
	switch len(shape) {
	case 2:
		n, t, d = 1, shape[0], shape[1]
	case 3:
		n, t, d = shape[0], shape[1], shape[2]
	default:
		return inputErr(path, "shape %s: want (N, T, D_in) or (T, D_in)", r.Header.ShapeString())
	}
	if t == 0 || d == 0 {
		return inputErr(path, "shape %s has no tokens or no features", r.Header.ShapeString())
	}
	var lengths []int64
	if e.o.Lengths != "" {
		lf, err := os.Open(e.o.Lengths)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInput, err)
		}
		defer lf.Close()
		lr, err := npy.NewReader(lf)
		if err != nil {
			return inputErr(e.o.Lengths, "%v", err)
		}
		if len(lr.Header.Shape) != 1 || lr.Header.Shape[0] != n {
			return inputErr(e.o.Lengths, "shape %s: want (%d,) to match %s", lr.Header.ShapeString(), n, path)
		}
		if lengths, err = lr.ReadInts(n); err != nil {
			return inputErr(e.o.Lengths, "%v", err)
		}
		for i, l := range lengths {
			if l < 1 || l > int64(t) {
				return inputErr(e.o.Lengths, "length %d of row %d is outside [1, %d]", l, i, t)
			}
		}
	}
	var weights *npy.Reader
	if e.o.Weights != "" {
		wf, err := os.Open(e.o.Weights)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInput, err)
		}
		defer wf.Close()
		if weights, err = npy.NewReader(wf); err != nil {
			return inputErr(e.o.Weights, "%v", err)
		}
		if err := weights.CheckFloat(); err != nil {
			return inputErr(e.o.Weights, "%v", err)
		}
		ws := weights.Header.Shape
		if !(len(ws) == 2 && ws[0] == n && ws[1] == t) && !(len(shape) == 2 && len(ws) == 1 && ws[0] == t) {
			return inputErr(e.o.Weights, "shape %s: want (%d, %d) to match %s", weights.Header.ShapeString(), n, t, path)
		}
	}
	var ids []string
	if e.o.IDs != "" {
		idf, err := os.Open(e.o.IDs)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInput, err)
		}
		defer idf.Close()
		sc := bufio.NewScanner(idf)
		for sc.Scan() {
			ids = append(ids, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return inputErr(e.o.IDs, "%v", err)
		}
		if len(ids) != n {
			return inputErr(e.o.IDs, "%d IDs for %d rows of %s", len(ids), n, path)
		}
	}
	for i := 0; i < n; i++ {
		feat := make([]float32, t*d)
		if err := r.ReadFloats(feat); err != nil {
			return inputErr(path, "row %d: %v", i, err)
		}
		tk := Tokens{T: t, D: d, Features: feat}
		if weights != nil {
			tk.Weights = make([]float32, t)
			if err := weights.ReadFloats(tk.Weights); err != nil {
				return inputErr(e.o.Weights, "row %d: %v", i, err)
			}
		}
		if lengths != nil {
			l := int(lengths[i])
			tk.T, tk.Features = l, tk.Features[:l*d]
			if tk.Weights != nil {
				tk.Weights = tk.Weights[:l]
			}
		}
		id := strconv.Itoa(i)
		if ids != nil {
			id = ids[i]
		}
		if err := fn(Input{ID: id, Data: tk}); err != nil {
			return err
		}
	}
	if err := r.Done(); err != nil {
		return inputErr(path, "%v", err)
	}
	if weights != nil {
		if err := weights.Done(); err != nil {
			return inputErr(e.o.Weights, "%v", err)
		}
	}
	return nil
}
