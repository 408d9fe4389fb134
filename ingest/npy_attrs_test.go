package ingest_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestNPYListAttrs: NumPy --attrs lines take lists, as a JSONL cloud's
// attrs and Parquet's list columns do: they are stored as lists and
// filter by CONTAINS; a list holding null or a list, or a number that
// overflows, refuses its row, named by file line and attribute, and
// --skip-invalid skips it alone.
func TestNPYListAttrs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(23, 4)
	f := writeNPYInput(t, dir, rows)
	lines := []string{
		`{"tags":["a","b"],"n":[1,2.5]}`,
		`{"tags":[]}`,
		`{"tags":["a"],"x":null}`,
		`{"tags":["c"]}`,
	}
	os.WriteFile(f.Attrs, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	c := openColl(t, "c")[0]
	if _, err := ingest.ImportNPY(ctx, c, os.Open, f, ingest.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get(ctx, rows[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"tags": []any{"a", "b"}, "n": []any{1.0, 2.5}}; !reflect.DeepEqual(it.Attrs, want) {
		t.Errorf("row 0 attrs %#v, want %#v", it.Attrs, want)
	}
	query := wpcsim.Cloud{Dim: 4, Points: append([]float32(nil), rows[0].Points[0]...), Weights: []float32{1}}
	page, err := c.Search(ctx, query, wpcdb.SearchOptions{K: 10, Exact: true, Filter: `tags CONTAINS "a"`})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range page.Hits {
		got = append(got, h.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{rows[0].ID, rows[2].ID}) && fmt.Sprint(got) != fmt.Sprint([]string{rows[2].ID, rows[0].ID}) {
		t.Errorf(`tags CONTAINS "a": %v, want rows 0 and 2`, got)
	}
	for _, tc := range []struct{ line, want string }{
		{`{"tags":["a",null]}`, "attrs.jsonl line 2: cloudjson: malformed cloud: attrs.tags[1]"},
		{`{"tags":[["a"]]}`, "attrs.jsonl line 2: cloudjson: malformed cloud: attrs.tags[0]"},
		{`{"n":[1e999]}`, "attrs.jsonl line 2"},
	} {
		bad := append([]string(nil), lines...)
		bad[1] = tc.line
		os.WriteFile(f.Attrs, []byte(strings.Join(bad, "\n")+"\n"), 0o644)
		c := openColl(t, "c")[0]
		_, err := ingest.ImportNPY(ctx, c, os.Open, f, ingest.ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || c.Count() != 0 {
			t.Errorf("%s: %v, %d items; want %q and nothing written", tc.line, err, c.Count(), tc.want)
		}
		var logged []string
		st, err := ingest.ImportNPY(ctx, c, os.Open, f, ingest.ImportOptions{SkipInvalid: true, Log: func(m string) { logged = append(logged, m) }})
		if err != nil || st.Committed != 3 || st.Skipped != 1 || len(logged) != 1 || !strings.Contains(logged[0], tc.want) {
			t.Errorf("%s with --skip-invalid: %+v %v %q", tc.line, st, err, logged)
		}
	}
}
