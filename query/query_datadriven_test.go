package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestDatadriven runs testdata/parse and testdata/compile (rewrite the
// expected output with -rewrite).
//
// testdata/parse:
//
//	parse        the input is one filter; prints its canonical form, or
//	             the error with a caret under its column
//
// testdata/compile, over a storage.Coll on an in-memory filesystem:
//
//	items        one item per input line: "name {json attributes}";
//	             an existing name is replaced
//	delete names=(a,b)
//	compile      the input is one filter (none: the zero Expr); prints the
//	             names of the matching items in internal-ID order
//
// Every canonical form is checked to parse back to the same tree, and
// every compiled bitmap is checked against the oracle of
// filter_compile_test.go, which evaluates the documented semantics item
// by item.
func TestDatadriven(t *testing.T) {
	t.Run("parse", func(t *testing.T) {
		datadriven.RunTest(t, "testdata/parse", func(t *testing.T, td *datadriven.TestData) string {
			if td.Cmd != "parse" {
				td.Fatalf(t, "unknown command %s", td.Cmd)
			}
			return parseAndShow(t, td.Input)
		})
	})
	t.Run("compile", func(t *testing.T) {
		s := &compileScript{}
		defer s.close()
		datadriven.RunTest(t, "testdata/compile", func(t *testing.T, td *datadriven.TestData) string {
			return s.run(t, td)
		})
	})
}

// parseAndShow parses src and prints the canonical form, or the error
// with a caret under the column it names.
func parseAndShow(t *testing.T, src string) string {
	e, err := Parse(src)
	if err != nil {
		var fe *FilterError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidFilter) || fe.Src != src {
			t.Errorf("Parse(%q): %v is not a *FilterError of the source wrapping ErrInvalidFilter", src, err)
			return "error: " + err.Error() + "\n"
		}
		return showError(fe)
	}
	canon := e.String()
	e2, err := Parse(canon)
	if err != nil || e2.String() != canon || !reflect.DeepEqual(e2.root, e.root) {
		t.Errorf("canonical form %q of %q does not parse back to the same tree (%v)", canon, src, err)
	}
	return canon + "\n"
}

// showError prints the error and, for a one-line filter, the filter with a
// caret under the error's column (counted in characters, not bytes).
func showError(fe *FilterError) string {
	out := "error: " + fe.Error() + "\n"
	if strings.TrimSpace(fe.Src) == "" || strings.ContainsAny(fe.Src, "\n\r\t") || !utf8.ValidString(fe.Src) || len(fe.Src) > 120 {
		return out
	}
	return out + fe.Src + "\n" + strings.Repeat(" ", utf8.RuneCountInString(fe.Src[:fe.Pos-1])) + "^\n"
}

// compileScript is a store with one collection and the attributes of its
// items as written, for the oracle.
type compileScript struct {
	st    *storage.Store
	coll  *storage.Coll
	items map[string]map[string]any // live items by name
}

func (s *compileScript) close() {
	if s.st != nil {
		s.st.Close()
	}
}

func (s *compileScript) run(t *testing.T, td *datadriven.TestData) string {
	if s.coll == nil {
		st, err := storage.Open("db", &storage.Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		s.st = st
		if s.coll, err = st.CreateCollection("c", collconfig.Config{Dim: 2}, nil); err != nil {
			t.Fatal(err)
		}
		s.items = map[string]map[string]any{}
	}
	switch td.Cmd {
	case "items":
		var ws []storage.ItemWrite
		for _, line := range strings.Split(td.Input, "\n") {
			name, js, _ := strings.Cut(line, " ")
			var attrs map[string]any
			if err := json.Unmarshal([]byte(js), &attrs); err != nil {
				td.Fatalf(t, "item %q: %v", line, err)
			}
			cloud := wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}
			ws = append(ws, storage.ItemWrite{ID: name, Cloud: cloud, Attrs: attrs})
		}
		if _, err := s.coll.Write(ws); err != nil {
			return "error: " + err.Error() + "\n"
		}
		for _, w := range ws {
			s.items[w.ID] = w.Attrs
		}
		return fmt.Sprintf("%d live items\n", s.coll.Count())
	case "delete":
		arg, ok := td.Arg("names")
		if !ok {
			td.Fatalf(t, "delete needs names=")
		}
		if _, err := s.coll.Delete(arg.Vals); err != nil {
			return "error: " + err.Error() + "\n"
		}
		for _, name := range arg.Vals {
			delete(s.items, name)
		}
		return fmt.Sprintf("%d live items\n", s.coll.Count())
	case "compile":
		var e Expr
		if td.Input != "" {
			var err error
			if e, err = Parse(td.Input); err != nil {
				var fe *FilterError
				if errors.As(err, &fe) {
					return showError(fe)
				}
				return "error: " + err.Error() + "\n"
			}
		}
		return s.compile(t, td.Pos, e)
	}
	td.Fatalf(t, "unknown command %s", td.Cmd)
	return ""
}

// compile prints the names of the items e matches, in internal-ID order,
// after checking them against the oracle.
func (s *compileScript) compile(t *testing.T, pos string, e Expr) string {
	bm := Compile(e, s.coll)
	var names []string
	got := map[string]bool{}
	for it := bm.Iterator(); it.HasNext(); {
		item, err := s.coll.GetByIID(it.Next())
		if err != nil {
			t.Fatalf("%s: %v", pos, err)
		}
		names = append(names, item.ID)
		got[item.ID] = true
	}
	for name, attrs := range s.items {
		if want := e.root == nil || oracle(e.root, attrs); want != got[name] {
			t.Errorf("%s: %s: item %s matched %t, the oracle says %t", pos, e, name, got[name], want)
		}
	}
	for name := range got {
		if _, live := s.items[name]; !live {
			t.Errorf("%s: %s: matched %s, which is not live", pos, e, name)
		}
	}
	if len(names) == 0 {
		return "(none)\n"
	}
	return strings.Join(names, " ") + "\n"
}
