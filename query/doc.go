// Package query plans and runs searches: a filter compiled to a bitmap,
// the plan (an exact scan when few items pass, else the first stage), the
// exact rerank of the candidates, and the stats an explain prints. Engine
// runs them; it asks its FirstStage (firststage.Stage) for candidates under
// the allowed bitmap and reranks them with a wpcsim.Scorer bound to the
// query once, unless the first stage's scores are already exact (the linear
// kernel's centroids).
//
// The filter language: Parse turns a filter into an Expr, and Compile
// evaluates an Expr to the roaring bitmap of matching items over a
// BitmapSource, which storage.Coll implements.
//
// # Filters
//
//	color = "red"
//	color != "red" AND year >= 2020 AND year < 2024
//	color IN ("red", "blue") OR NOT (size > 10 OR "shipping.free" = true)
//	tags CONTAINS "sale" AND tags IN ("shoes", "boots") AND note = null
//
// The grammar, in EBNF; tokens may be separated by any ASCII whitespace
// (space, tab, CR, LF):
//
//	filter     = or .
//	or         = and { "OR" and } .
//	and        = unary { "AND" unary } .
//	unary      = "NOT" unary | "(" or ")" | comparison .
//	comparison = attr ( op value | "CONTAINS" value
//	                  | [ "NOT" ] "IN" "(" value { "," value } ")" ) .
//	op         = "=" | "!=" | "<" | "<=" | ">" | ">=" .
//	attr       = name | string .
//	value      = string | number | "true" | "false" | "null" .
//	name       = letter { letter | digit | "." | "-" } .   (not a keyword)
//	letter     = "A" … "Z" | "a" … "z" | "_" .
//
// So NOT binds tighter than AND, which binds tighter than OR. Keywords
// (AND, OR, NOT, IN, CONTAINS, TRUE, FALSE, NULL) are case-insensitive; an attribute named
// like one, or with other characters, is written as a string: "and" = 1,
// "size (cm)" > 3. A string is double-quoted with the escapes of JSON (\"
// \\ \/ \b \f \n \r \t \uXXXX, surrogate pairs for characters beyond the
// BMP; a lone surrogate is an error) and no raw control characters. A number
// is what strconv.ParseFloat accepts, which includes JSON numbers and Go
// float literals (-1, 2.5e-3, .5, 0x1p-4), provided it is finite: NaN,
// Inf and 1e999 are errors. The ordering operators (<, <=, >, >=) take
// numbers only, CONTAINS a string, number or boolean. IN lists take any
// literals, of mixed types.
//
// A filter is at most MaxFilterLength bytes (its canonical form too) and
// nests parentheses and NOTs at most MaxFilterDepth deep. A malformed filter
// gets a *FilterError, which wraps ErrInvalidFilter and gives the byte
// column of the problem. Expr.String is the canonical form, which parses
// back to an equal Expr.
//
// # Semantics
//
// Attribute values are strings, numbers (float64), booleans, null, and
// lists of strings, numbers and booleans; a filter value matches a stored
// value of the same type only, and numbers compare as float64 (-0 = 0). A
// list is many values of one attribute: a comparison holds when one of its
// elements satisfies it.
//
//   - a = v, a < v, …: true for an item whose attribute a has v's type and
//     compares so, or is a list with such an element; false for an item
//     without a, or whose a has another type (year = "2020" does not match
//     year 2020). a = null is true for an item whose a is null.
//   - a CONTAINS v: a = v, written for lists (tags CONTAINS "sale").
//   - a != v: true for an item that has a, with any value but v (of any
//     type; null and lists included), and for a list, no element v. So
//     a != v is not NOT a = v: the latter also matches items without a.
//   - a IN (v1, v2, …): a = v1 OR a = v2 OR … (for a list: an element is one
//     of them); a NOT IN (…): the item has a and a is none of them (for a
//     list: no element is; as !=).
//   - NOT x: the live items x does not match.
//   - AND, OR: intersection and union.
//
// The result of Compile is always a subset of the live items.
package query
