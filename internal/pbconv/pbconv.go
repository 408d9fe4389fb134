// Package pbconv converts between the wire types of wpcdb.v1 (server/wpcdbv1)
// and the embedded API's types, for the server and its clients (the CLI's
// client mode, the load benchmark). Conversions from the wire never trust
// the sender: they report what cannot be represented, naming the field, and
// leave the rest of validation (values, limits) to the core, so that a
// request is judged by the same rules over the network as embedded.
package pbconv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/simd"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// CloudToPB packs a cloud.
func CloudToPB(c wpcsim.Cloud) *pb.Cloud {
	return &pb.Cloud{Dim: uint32(c.Dim), Weights: c.Weights, Points: c.Points}
}

// CloudFromPB unpacks a cloud, its points from points or from the packed
// points_data. Empty weights with points present mean every weight 1, as in
// the JSON format; a nil cloud is the empty cloud, which fails validation
// with a message naming its dimension. The error names the field that
// cannot be unpacked.
func CloudFromPB(c *pb.Cloud) (wpcsim.Cloud, error) {
	if c == nil {
		return wpcsim.Cloud{}, nil
	}
	out := wpcsim.Cloud{Dim: int(c.Dim), Weights: c.Weights, Points: c.Points}
	if len(c.PointsData) > 0 {
		if len(c.Points) > 0 {
			return out, errors.New("points, points_data: set one, not both")
		}
		pts, err := unpackPoints(c.PointsData, c.PointsDtype, out.Dim)
		if err != nil {
			return out, err
		}
		out.Points = pts
	}
	if len(c.Weights) == 0 && out.Dim > 0 && len(out.Points) > 0 && len(out.Points)%out.Dim == 0 {
		out.Weights = make([]float32, len(out.Points)/out.Dim)
		for i := range out.Weights {
			out.Weights[i] = 1
		}
	}
	return out, nil
}

// unpackPoints decodes little-endian float32 or float16 coordinates: shape
// (M, dim), M from the length.
func unpackPoints(data []byte, dt pb.Dtype, dim int) ([]float32, error) {
	size := 4
	switch dt {
	case pb.Dtype_DTYPE_UNSPECIFIED, pb.Dtype_DTYPE_FLOAT32:
	case pb.Dtype_DTYPE_FLOAT16:
		size = 2
	default:
		return nil, fmt.Errorf("points_dtype: unknown dtype %d", int32(dt))
	}
	if dim <= 0 {
		return nil, fmt.Errorf("points_data: dim must be positive to give its shape, got %d", dim)
	}
	if len(data)%(size*dim) != 0 {
		return nil, fmt.Errorf("points_data: %d bytes is not a whole number of points of %d × %d bytes", len(data), dim, size)
	}
	out := make([]float32, len(data)/size)
	if size == 4 {
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		return out, nil
	}
	half := make([]uint16, len(out))
	for i := range half {
		half[i] = binary.LittleEndian.Uint16(data[2*i:])
	}
	simd.F16ToF32(out, half)
	return out, nil
}

// PackPoints encodes coordinates as little-endian float32 points_data.
func PackPoints(points []float32) []byte {
	out := make([]byte, 4*len(points))
	for i, x := range points {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

// AttrsToPB converts attribute values: string, float64, bool (other
// numeric types are converted to float64), nil (null) and lists ([]any) of
// those but null.
func AttrsToPB(attrs map[string]any) (map[string]*structpb.Value, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	out := make(map[string]*structpb.Value, len(attrs))
	for k, v := range attrs {
		if list, ok := v.([]any); ok {
			vals := make([]*structpb.Value, len(list))
			for i, e := range list {
				pv, err := scalarToPB(e)
				if err != nil || e == nil {
					return nil, fmt.Errorf("attrs.%s[%d]: a list holds strings, numbers and booleans, got %T", k, i, e)
				}
				vals[i] = pv
			}
			out[k] = structpb.NewListValue(&structpb.ListValue{Values: vals})
			continue
		}
		pv, err := scalarToPB(v)
		if err != nil {
			return nil, fmt.Errorf("attrs.%s: %w", k, err)
		}
		out[k] = pv
	}
	return out, nil
}

func scalarToPB(v any) (*structpb.Value, error) {
	switch x := v.(type) {
	case string:
		return structpb.NewStringValue(x), nil
	case bool:
		return structpb.NewBoolValue(x), nil
	case float64:
		return structpb.NewNumberValue(x), nil
	case float32:
		return structpb.NewNumberValue(float64(x)), nil
	case int:
		return structpb.NewNumberValue(float64(x)), nil
	case int64:
		return structpb.NewNumberValue(float64(x)), nil
	case nil:
		return structpb.NewNullValue(), nil
	}
	return nil, fmt.Errorf("value must be a string, number, boolean, null or a list of those, got %T", v)
}

// AttrsFromPB converts attribute values; a value that is not a string,
// number, boolean, null or a list of strings, numbers and booleans (unset,
// an object, a nested list) is an error naming the attribute. A list
// longer than storage.MaxAttrListLength is refused before it is copied.
func AttrsFromPB(attrs map[string]*structpb.Value) (map[string]any, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(attrs))
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names) // the first bad attribute is reported deterministically
	for _, k := range names {
		lv, ok := attrs[k].GetKind().(*structpb.Value_ListValue)
		if !ok {
			v, err := scalarFromPB(attrs[k])
			if err != nil {
				return nil, fmt.Errorf("attrs.%s: %w", k, err)
			}
			out[k] = v
			continue
		}
		elems := lv.ListValue.GetValues()
		if len(elems) > storage.MaxAttrListLength {
			return nil, fmt.Errorf("attrs.%s: list of %d values exceeds %d", k, len(elems), storage.MaxAttrListLength)
		}
		list := make([]any, len(elems))
		for i, e := range elems {
			v, err := scalarFromPB(e)
			if err == nil && v == nil {
				err = errors.New("a list holds strings, numbers and booleans, not null")
			}
			if err != nil {
				return nil, fmt.Errorf("attrs.%s[%d]: %w", k, i, err)
			}
			list[i] = v
		}
		out[k] = list
	}
	return out, nil
}

func scalarFromPB(v *structpb.Value) (any, error) {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return x.StringValue, nil
	case *structpb.Value_NumberValue:
		return x.NumberValue, nil
	case *structpb.Value_BoolValue:
		return x.BoolValue, nil
	case *structpb.Value_NullValue:
		return nil, nil
	case nil:
		return nil, errors.New("no value (want a string, number, boolean, null or a list)")
	case *structpb.Value_ListValue:
		return nil, errors.New("a list holds strings, numbers and booleans, not lists")
	case *structpb.Value_StructValue:
		return nil, errors.New("value must be a string, number, boolean, null or a list of those, got an object")
	}
	return nil, errors.New("value of an unknown kind")
}

// ItemToPB converts an item.
func ItemToPB(it wpcdb.Item) (*pb.Item, error) {
	attrs, err := AttrsToPB(it.Attrs)
	if err != nil {
		return nil, err
	}
	return &pb.Item{Id: it.ID, Cloud: CloudToPB(it.Cloud), Attrs: attrs}, nil
}

// ItemFromPB converts an item; the error names the field (its attributes
// are the only part that may fail here).
func ItemFromPB(it *pb.Item) (wpcdb.Item, error) {
	cloud, cerr := CloudFromPB(it.GetCloud())
	attrs, err := AttrsFromPB(it.GetAttrs())
	out := wpcdb.Item{ID: it.GetId(), Cloud: cloud, Attrs: attrs}
	if cerr != nil {
		return out, cerr
	}
	return out, err
}

// ConfigToPB converts a collection config.
func ConfigToPB(c wpcdb.CollectionConfig) *pb.CollectionConfig {
	s := c.Similarity
	return &pb.CollectionConfig{
		Dim:         uint32(c.Dim),
		MaxPoints:   uint32(c.MaxPoints),
		Kernel:      kernelString(s.Kernel),
		Norm:        normToPB[s.Norm],
		RawPoints:   s.RawPoints,
		Score:       ScoreModeToPB(s.Score),
		Encoding:    encodingToPB[c.Encoding],
		RffDim:      uint32(c.Features.Dim),
		RffSeed:     c.Features.Seed,
		RffImported: c.Features.Imported,
		Index: &pb.IndexConfig{
			Kind: c.Index.Kind, GraphAt: clampUint(c.Index.GraphAt), M: clampUint(c.Index.M),
			EfConstruction: clampUint(c.Index.EfConstruction), EfSearch: clampUint(c.Index.EfSearch),
		},
	}
}

func clampUint(v int) uint32 { return uint32(max(0, min(v, math.MaxUint32))) }

func kernelString(k wpcsim.Kernel) string {
	if k.IsZero() {
		return ""
	}
	return k.String()
}

var (
	normToPB     = map[wpcsim.Norm]pb.Norm{wpcsim.NormMean: pb.Norm_NORM_MEAN, wpcsim.NormSum: pb.Norm_NORM_SUM}
	encodingToPB = map[collconfig.Encoding]pb.Encoding{collconfig.EncodingF32: pb.Encoding_ENCODING_F32, collconfig.EncodingF16: pb.Encoding_ENCODING_F16, collconfig.EncodingBF16: pb.Encoding_ENCODING_BF16}
)

// ScoreModeToPB converts a score mode.
func ScoreModeToPB(m wpcsim.ScoreMode) pb.ScoreMode {
	switch m {
	case wpcsim.ScoreCosine:
		return pb.ScoreMode_SCORE_MODE_COSINE
	case wpcsim.ScoreMMD:
		return pb.ScoreMode_SCORE_MODE_MMD
	}
	return pb.ScoreMode_SCORE_MODE_INNER
}

// ScoreModeFromPB converts a score mode; UNSPECIFIED is the default, inner.
func ScoreModeFromPB(m pb.ScoreMode) (wpcsim.ScoreMode, error) {
	switch m {
	case pb.ScoreMode_SCORE_MODE_UNSPECIFIED, pb.ScoreMode_SCORE_MODE_INNER:
		return wpcsim.ScoreInner, nil
	case pb.ScoreMode_SCORE_MODE_COSINE:
		return wpcsim.ScoreCosine, nil
	case pb.ScoreMode_SCORE_MODE_MMD:
		return wpcsim.ScoreMMD, nil
	}
	return 0, fmt.Errorf("score: unknown score mode %d", int32(m))
}

// ConfigFromPB converts a collection config. Every field that cannot be
// converted is reported, each named; the core then validates the values.
func ConfigFromPB(c *pb.CollectionConfig) (wpcdb.CollectionConfig, error) {
	if c == nil {
		return wpcdb.CollectionConfig{}, errors.New("config: missing (dim is required)")
	}
	var errs []error
	out := wpcdb.CollectionConfig{
		Dim:       clampInt(c.Dim),
		MaxPoints: clampInt(c.MaxPoints),
		Features:  collconfig.Features{Dim: clampInt(c.RffDim), Seed: c.RffSeed},
	}
	out.Similarity.RawPoints = c.RawPoints
	if ic := c.GetIndex(); ic != nil {
		out.Index = collconfig.Index{
			Kind: ic.Kind, GraphAt: clampInt(ic.GraphAt),
			HNSWOptions: index.HNSWOptions{M: clampInt(ic.M), EfConstruction: clampInt(ic.EfConstruction), EfSearch: clampInt(ic.EfSearch)},
		}
	}
	if c.Kernel != "" {
		k, err := wpcsim.ParseKernel(c.Kernel)
		if err != nil {
			errs = append(errs, fmt.Errorf("kernel: %w", err))
		}
		out.Similarity.Kernel = k
	}
	switch c.Norm {
	case pb.Norm_NORM_UNSPECIFIED, pb.Norm_NORM_MEAN:
		out.Similarity.Norm = wpcsim.NormMean
	case pb.Norm_NORM_SUM:
		out.Similarity.Norm = wpcsim.NormSum
	default:
		errs = append(errs, fmt.Errorf("norm: unknown norm %d", int32(c.Norm)))
	}
	var err error
	if out.Similarity.Score, err = ScoreModeFromPB(c.Score); err != nil {
		errs = append(errs, err)
	}
	switch c.Encoding {
	case pb.Encoding_ENCODING_UNSPECIFIED, pb.Encoding_ENCODING_F32:
		out.Encoding = collconfig.EncodingF32
	case pb.Encoding_ENCODING_F16:
		out.Encoding = collconfig.EncodingF16
	case pb.Encoding_ENCODING_BF16:
		out.Encoding = collconfig.EncodingBF16
	default:
		errs = append(errs, fmt.Errorf("encoding: unknown encoding %d", int32(c.Encoding)))
	}
	return out, errors.Join(errs...)
}

// clampInt keeps a uint32 from the wire positive-or-huge as an int, so the
// core's range checks see it as sent.
func clampInt(v uint32) int { return int(min(uint64(v), math.MaxInt32)) }

// InfoToPB converts a collection description.
func InfoToPB(info wpcdb.CollectionInfo) *pb.CollectionInfo {
	return &pb.CollectionInfo{
		Name: info.Name, Config: ConfigToPB(info.Config), Count: uint64(info.Count), DiskBytes: info.DiskBytes,
		Index: &pb.IndexStatus{Kind: info.Index.Kind, InGraph: uint64(info.Index.InGraph), Buffered: uint64(info.Index.Buffered),
			Representation: info.Index.Representation, Dim: uint32(info.Index.Dim), Recall: info.Index.Recall,
			FirstStageBytes: uint64(max(info.Index.FirstStageBytes, 0)), Loaded: info.Index.Loaded},
	}
}

// InfoFromPB converts a collection description received from a server.
func InfoFromPB(info *pb.CollectionInfo) (wpcdb.CollectionInfo, error) {
	cfg, err := ConfigFromPB(info.GetConfig())
	if err != nil {
		return wpcdb.CollectionInfo{}, err
	}
	cfg.Features.Imported = info.GetConfig().GetRffImported()
	if cfg.Similarity.Kernel.IsZero() {
		cfg.Similarity = cfg.Similarity.WithDefaults()
	}
	st := info.GetIndex()
	return wpcdb.CollectionInfo{
		Name: info.GetName(), Config: cfg, Count: int(info.GetCount()), DiskBytes: info.GetDiskBytes(),
		Index: wpcdb.IndexStatus{Kind: st.GetKind(), InGraph: int(st.GetInGraph()), Buffered: int(st.GetBuffered()),
			Representation: st.GetRepresentation(), Dim: clampInt(st.GetDim()), Recall: st.GetRecall(),
			FirstStageBytes: int64(min(st.GetFirstStageBytes(), math.MaxInt64)), Loaded: st.GetLoaded()},
	}, nil
}

// CalibrationToPB converts a calibration's outcome.
func CalibrationToPB(cal wpcdb.Calibration) *pb.CalibrateResponse {
	out := &pb.CalibrateResponse{Chosen: cal.Chosen.String(), Skipped: cal.Skipped,
		Depth: uint32(cal.Chosen.Depth), Sample: uint32(cal.Chosen.Sample), Queries: uint32(cal.Chosen.Queries)}
	for _, m := range cal.Measured {
		out.Measured = append(out.Measured, &pb.CalibrateResponse_Measured{Representation: m.Representation, Dim: uint32(m.Dim), Recall: m.Recall})
	}
	return out
}

// CalibrationFromPB converts a calibration's outcome received from a
// server.
func CalibrationFromPB(r *pb.CalibrateResponse) wpcdb.Calibration {
	chosen := firststage.Representation{Kind: firststage.Kind(r.GetChosen()), Depth: clampInt(r.GetDepth()),
		Sample: clampInt(r.GetSample()), Queries: clampInt(r.GetQueries())}
	if dim, ok := strings.CutPrefix(r.GetChosen(), "pca-"); ok {
		chosen.Kind = firststage.PCA
		chosen.Dim, _ = strconv.Atoi(dim)
	}
	cal := wpcdb.Calibration{Chosen: chosen, Skipped: r.GetSkipped()}
	for _, m := range r.GetMeasured() {
		cal.Measured = append(cal.Measured, firststage.Measured{Representation: m.GetRepresentation(), Dim: clampInt(m.GetDim()), Recall: m.GetRecall()})
		if m.GetRepresentation() == r.GetChosen() {
			chosen.Recall = m.GetRecall()
		}
	}
	cal.Chosen = chosen
	return cal
}

// SampleToPB converts an imported random-feature sample.
func SampleToPB(s wpcsim.FeatureSample) *pb.FeatureSample {
	out := &pb.FeatureSample{}
	for t := range s.W {
		term := &pb.FeatureSample_Term{W: s.W[t]}
		if t < len(s.B) {
			term.B = s.B[t]
		}
		out.Terms = append(out.Terms, term)
	}
	return out
}

// SampleFromPB converts an imported random-feature sample for clouds of
// dimension dim (the sample's own validation is the core's).
func SampleFromPB(s *pb.FeatureSample, dim int) wpcsim.FeatureSample {
	out := wpcsim.FeatureSample{Dim: dim}
	for _, t := range s.GetTerms() {
		out.W = append(out.W, t.GetW())
		out.B = append(out.B, t.GetB())
	}
	return out
}

// HitsToPB converts search hits.
func HitsToPB(hits []wpcdb.Hit) ([]*pb.Hit, error) {
	out := make([]*pb.Hit, len(hits))
	for i, h := range hits {
		attrs, err := AttrsToPB(h.Attrs)
		if err != nil {
			return nil, fmt.Errorf("hit %q: %w", h.ID, err)
		}
		out[i] = &pb.Hit{Id: h.ID, Score: h.Score, Distance: h.Distance, Attrs: attrs}
	}
	return out, nil
}

// HitsFromPB converts search hits (internal IDs are not sent).
func HitsFromPB(hits []*pb.Hit) ([]wpcdb.Hit, error) {
	out := make([]wpcdb.Hit, len(hits))
	for i, h := range hits {
		attrs, err := AttrsFromPB(h.GetAttrs())
		if err != nil {
			return nil, fmt.Errorf("hit %q: %w", h.GetId(), err)
		}
		out[i] = wpcdb.Hit{ID: h.GetId(), Score: h.GetScore(), Distance: h.GetDistance(), Attrs: attrs}
	}
	return out, nil
}

// StatsToPB converts search statistics.
func StatsToPB(s wpcdb.SearchStats) *pb.SearchStats {
	return &pb.SearchStats{Plan: s.Plan, Passing: uint64(s.Passing), Candidates: uint64(s.Candidates), Reranked: uint64(s.Reranked),
		FirstStageMs: s.FirstStageMs, RerankMs: s.RerankMs, TotalMs: s.TotalMs, FirstStage: s.FirstStage}
}

// StatsFromPB converts search statistics.
func StatsFromPB(s *pb.SearchStats) wpcdb.SearchStats {
	return wpcdb.SearchStats{Plan: s.GetPlan(), Passing: int(s.GetPassing()), Candidates: int(s.GetCandidates()), Reranked: int(s.GetReranked()),
		FirstStageMs: s.GetFirstStageMs(), RerankMs: s.GetRerankMs(), TotalMs: s.GetTotalMs(), FirstStage: s.GetFirstStage()}
}

// SnapshotToPB converts a snapshot's description.
func SnapshotToPB(s wpcdb.SnapshotInfo) *pb.SnapshotInfo {
	return &pb.SnapshotInfo{Name: s.Name, Dir: s.Dir, CreatedUnixMs: s.Created.UnixMilli(), Bytes: uint64(s.Bytes)}
}

// SnapshotFromPB is SnapshotToPB's inverse.
func SnapshotFromPB(s *pb.SnapshotInfo) wpcdb.SnapshotInfo {
	return wpcdb.SnapshotInfo{Name: s.GetName(), Dir: s.GetDir(), Created: time.UnixMilli(s.GetCreatedUnixMs()).UTC(), Bytes: int64(s.GetBytes())}
}
