package storage

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestDatadriven runs testdata/coll (rewrite the expected output with
// -rewrite): a Store on an in-memory filesystem that survives close and
// reopen. Commands (coll= defaults to c):
//
//	open | close | reopen | collections
//	create name=c dim=2 [encoding=f32|f16|bf16] [max-points=..]
//	describe [coll=c] | drop name=c
//	put [coll=c]         one JSON cloud per input line: {"id", "weights",
//	                     "points", "attrs"}; g(X,X) is |Σ w_i x_i|² (storage
//	                     does not compute it)
//	get id=a | delete ids=(a,b) | count | epoch | scan
//	changes since=N      the items written or deleted after epoch N
//	save-index [epoch=N] one "name: text" blob per input line (default: the
//	                     current epoch) | saved-index
//	equal attr=color value="red" | range attr=year [lo=..] [hi=..] [lo-open]
//	[hi-open] | has attr=year
//
// The script keeps its own model of the live items; after each write and
// each reopen the test checks that Count, Live and Get agree with it.
//
// The script runs twice: with writes through Pebble's log, and with every
// write ingested as SSTables (bulk.go), which must give the same output.
func TestDatadriven(t *testing.T) {
	for _, bulk := range []int{-1, 1} {
		t.Run(fmt.Sprintf("bulk=%d", bulk), func(t *testing.T) {
			s := &collScript{fs: vfs.NewMem(), model: map[string]map[string]modelItem{}, bulk: bulk}
			defer s.closeStore()
			datadriven.RunTest(t, "testdata/coll", func(t *testing.T, td *datadriven.TestData) string {
				return s.run(t, td)
			})
		})
	}
}

// modelItem is what the script expects Get to return.
type modelItem struct {
	cloud wpcsim.Cloud
	attrs map[string]any
}

type collScript struct {
	fs    vfs.FS
	st    *Store
	model map[string]map[string]modelItem // collection → id → item
	bulk  int                             // Options.BulkWriteBytes
}

func (s *collScript) closeStore() {
	if s.st != nil {
		s.st.Close()
		s.st = nil
	}
}

func errLine(err error) string { return "error: " + err.Error() + "\n" }

func (s *collScript) run(t *testing.T, td *datadriven.TestData) string {
	switch td.Cmd {
	case "open", "reopen":
		s.closeStore()
		st, err := Open("db", &Options{FS: s.fs, BulkWriteBytes: s.bulk})
		if err != nil {
			return errLine(err)
		}
		s.st = st
		s.checkModel(t, td)
		return fmt.Sprintf("collections: %s\n", strings.Join(st.Collections(), " "))
	case "close":
		if err := s.st.Close(); err != nil {
			return errLine(err)
		}
		return ""
	case "collections":
		return strings.Join(s.st.Collections(), " ") + "\n"
	case "create":
		var name string
		var cfg collconfig.Config
		td.ScanArgs(t, "name", &name)
		td.MaybeScanArgs(t, "dim", &cfg.Dim)
		td.MaybeScanArgs(t, "max-points", &cfg.MaxPoints)
		if arg, ok := td.Arg("encoding"); ok {
			e, err := collconfig.ParseEncoding(arg.SingleVal(t))
			if err != nil {
				return errLine(err)
			}
			cfg.Encoding = e
		}
		c, err := s.st.CreateCollection(name, cfg, nil)
		if err != nil {
			return errLine(err)
		}
		s.model[name] = map[string]modelItem{}
		return describe(c)
	case "drop":
		var name string
		td.ScanArgs(t, "name", &name)
		if err := s.st.DropCollection(name); err != nil {
			return errLine(err)
		}
		delete(s.model, name)
		return ""
	}

	name := "c"
	td.MaybeScanArgs(t, "coll", &name)
	c, err := s.st.Collection(name)
	if err != nil {
		return errLine(err)
	}
	switch td.Cmd {
	case "describe":
		return describe(c)
	case "put":
		return s.put(t, td, c)
	case "get":
		var id string
		td.ScanArgs(t, "id", &id)
		it, err := c.Get(id)
		if err != nil {
			return errLine(err)
		}
		return showItem(it)
	case "delete":
		arg, ok := td.Arg("ids")
		if !ok {
			td.Fatalf(t, "delete needs ids=")
		}
		iids, err := c.Delete(arg.Vals)
		if err != nil {
			return errLine(err)
		}
		for _, id := range arg.Vals {
			delete(s.model[name], id)
		}
		s.checkModel(t, td)
		return fmt.Sprintf("deleted %v, epoch %d\n", iids, c.Epoch())
	case "count":
		return fmt.Sprintf("%d\n", c.Count())
	case "epoch":
		return fmt.Sprintf("%d\n", c.Epoch())
	case "scan":
		var out strings.Builder
		err := c.ScanRecords(func(iid uint32, rec Record) error {
			fmt.Fprintf(&out, "%d: %s g=%s\n", iid, rec.ID, strconv.FormatFloat(rec.Self.G, 'g', -1, 64))
			return nil
		})
		if err != nil {
			return errLine(err)
		}
		return out.String()
	case "changes":
		var since uint64
		td.ScanArgs(t, "since", &since)
		var iids []uint32
		err := c.ChangesSince(since, func(iid uint32) error {
			iids = append(iids, iid)
			return nil
		})
		if err != nil {
			return errLine(err)
		}
		var out strings.Builder
		for _, iid := range iids {
			state := "deleted"
			if c.IsLive(iid) {
				state = "live"
			}
			fmt.Fprintf(&out, "%d %s\n", iid, state)
		}
		if len(iids) == 0 {
			out.WriteString("(none)\n")
		}
		return out.String()
	case "save-index":
		epoch := c.Epoch()
		td.MaybeScanArgs(t, "epoch", &epoch)
		blobs := map[string][]byte{}
		for _, line := range strings.Split(td.Input, "\n") {
			if line == "" {
				continue
			}
			n, v, _ := strings.Cut(line, ": ")
			blobs[n] = []byte(v)
		}
		save, err := c.BeginIndexSave()
		if err != nil {
			return errLine(err)
		}
		for _, n := range slices.Sorted(maps.Keys(blobs)) {
			if err := save.PutBlob(n, blobs[n]); err != nil {
				save.Abort()
				return errLine(err)
			}
		}
		if err := save.Commit(epoch); err != nil {
			return errLine(err)
		}
		return fmt.Sprintf("saved at epoch %d\n", epoch)
	case "saved-index":
		saved, err := c.OpenSavedIndex()
		if err != nil {
			return errLine(err)
		}
		if saved == nil {
			return "no saved index\n"
		}
		defer saved.Close()
		out := fmt.Sprintf("epoch %d\n", saved.Epoch)
		for _, n := range slices.Sorted(slices.Values(saved.Blobs())) {
			b, err := saved.GetBlob(n)
			if err != nil {
				return errLine(err)
			}
			out += fmt.Sprintf("%s: %s\n", n, b)
		}
		return out
	case "equal", "has", "range":
		var attr string
		td.ScanArgs(t, "attr", &attr)
		var bm *roaring.Bitmap
		switch td.Cmd {
		case "equal":
			var v any
			if err := json.Unmarshal([]byte(argVal(t, td, "value")), &v); err != nil {
				td.Fatalf(t, "value: %v", err)
			}
			bm = c.Equal(attr, v)
		case "has":
			bm = c.Has(attr)
		default:
			lo, hi := math.Inf(-1), math.Inf(1)
			td.MaybeScanArgs(t, "lo", &lo)
			td.MaybeScanArgs(t, "hi", &hi)
			bm = c.Range(attr, lo, hi, td.HasArg("lo-open"), td.HasArg("hi-open"))
		}
		return s.names(t, c, bm)
	}
	td.Fatalf(t, "unknown command %s", td.Cmd)
	return ""
}

// put writes the input's clouds in one batch, as the root package does:
// quantized to the collection's encoding first.
func (s *collScript) put(t *testing.T, td *datadriven.TestData, c *Coll) string {
	var ws []ItemWrite
	for _, line := range strings.Split(td.Input, "\n") {
		var in struct {
			ID      string         `json:"id"`
			Weights []float32      `json:"weights"`
			Points  [][]float32    `json:"points"`
			Attrs   map[string]any `json:"attrs"`
		}
		if err := json.Unmarshal([]byte(line), &in); err != nil {
			td.Fatalf(t, "%q: %v", line, err)
		}
		cloud := wpcsim.Cloud{Dim: len(in.Points[0]), Weights: in.Weights}
		for _, p := range in.Points {
			cloud.Points = append(cloud.Points, p...)
		}
		q, err := Quantize(c.Config().Encoding, cloud)
		if err != nil {
			return errLine(fmt.Errorf("item %q: %w", in.ID, err))
		}
		// g(X,X) of the linear kernel: the squared norm of the weighted sum.
		phi := make([]float32, q.Dim)
		for i, w := range q.Weights {
			for j, x := range q.Point(i) {
				phi[j] += w * x
			}
		}
		var g float64
		for _, x := range phi {
			g += float64(x) * float64(x)
		}
		ws = append(ws, ItemWrite{ID: in.ID, Cloud: q, Self: wpcsim.Self{G: g}, Attrs: in.Attrs})
	}
	iids, err := c.Write(ws)
	if err != nil {
		return errLine(err)
	}
	var out strings.Builder
	for i, w := range ws {
		s.model[c.Name()][w.ID] = modelItem{cloud: w.Cloud, attrs: w.Attrs}
		fmt.Fprintf(&out, "%s: iid %d\n", w.ID, iids[i])
	}
	fmt.Fprintf(&out, "epoch %d\n", c.Epoch())
	s.checkModel(t, td)
	return out.String()
}

// checkModel checks every collection against the script's model: the
// count, the live internal IDs, and each item as Get returns it.
func (s *collScript) checkModel(t *testing.T, td *datadriven.TestData) {
	t.Helper()
	for name, items := range s.model {
		c, err := s.st.Collection(name)
		if err != nil {
			t.Errorf("%s: collection %s: %v", td.Pos, name, err)
			continue
		}
		if c.Count() != len(items) {
			t.Errorf("%s: %s has %d items, want %d", td.Pos, name, c.Count(), len(items))
		}
		live := roaring.New()
		for id, want := range items {
			it, err := c.Get(id)
			if err != nil {
				t.Errorf("%s: Get(%q): %v", td.Pos, id, err)
				continue
			}
			live.Add(it.IID)
			if !slices.Equal(it.Cloud.Weights, want.cloud.Weights) || !slices.Equal(it.Cloud.Points, want.cloud.Points) || it.Cloud.Dim != want.cloud.Dim {
				t.Errorf("%s: Get(%q) cloud %+v, want %+v", td.Pos, id, it.Cloud, want.cloud)
			}
			if len(it.Attrs) != len(want.attrs) || !maps.EqualFunc(it.Attrs, want.attrs, func(a, b any) bool { return a == b }) {
				t.Errorf("%s: Get(%q) attrs %v, want %v", td.Pos, id, it.Attrs, want.attrs)
			}
		}
		if got := c.Live(); !got.Equals(live) {
			t.Errorf("%s: %s live %v, want %v", td.Pos, name, got.ToArray(), live.ToArray())
		}
		// The shared copy follows every write and delete, and is shared
		// (not copied again) while nothing changes.
		if got := c.LiveShared(); !got.Equals(live) || c.LiveShared() != got {
			t.Errorf("%s: %s shared live %v (same copy twice: %v), want %v", td.Pos, name, got.ToArray(), c.LiveShared() == got, live.ToArray())
		}
	}
}

// names prints the items of a bitmap as "iid:id", in internal-ID order.
func (s *collScript) names(t *testing.T, c *Coll, bm *roaring.Bitmap) string {
	if bm.IsEmpty() {
		return "(none)\n"
	}
	var parts []string
	for it := bm.Iterator(); it.HasNext(); {
		iid := it.Next()
		rec, err := c.ReadCloud(iid, nil)
		id := rec.ID
		if err != nil {
			t.Fatalf("item %d: %v", iid, err)
		}
		parts = append(parts, fmt.Sprintf("%d:%s", iid, id))
	}
	return strings.Join(parts, " ") + "\n"
}

func describe(c *Coll) string {
	js, err := marshalConfig(c.Config())
	if err != nil {
		return errLine(err)
	}
	return string(js) + "\n"
}

// showItem prints an item in the JSON cloud format, with its internal ID.
func showItem(it Item) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id=%s iid=%d\nweights=%s\npoints=", it.ID, it.IID, floats(it.Cloud.Weights))
	for i := range it.Cloud.Len() {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(floats(it.Cloud.Point(i)))
	}
	attrs, _ := json.Marshal(it.Attrs) // sorted keys
	fmt.Fprintf(&b, "\nattrs=%s\n", attrs)
	return b.String()
}

// floats prints float32s so that they parse back to the same values.
func floats(xs []float32) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func argVal(t *testing.T, td *datadriven.TestData, key string) string {
	arg, ok := td.Arg(key)
	if !ok {
		td.Fatalf(t, "missing %s=", key)
	}
	return arg.SingleVal(t)
}
