package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/wpcdb/wpcdb/server"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// TestHTTPJSON does what a curl user does against `wpcdb serve`: create a
// collection, upsert two clouds, search with attributes and a filter, all
// in protojson over plain HTTP/1.1 on the gRPC port, with the same auth
// and errors mapped from the gRPC codes. gRPC keeps working on the port.
func TestHTTPJSON(t *testing.T) {
	ts := startServer(t, &server.Options{Token: "tok", HTTP: true, Version: "v0.0.0-test"})
	base := "http://" + ts.addr
	call := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if method == "POST" && !strings.HasSuffix(path, "/count") {
			req.Header.Set("Content-Type", "application/json")
		} // else: no content type, as from curl -d (which says form): JSON all the same
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %d, body %q is not JSON: %v", method, path, resp.StatusCode, data, err)
		}
		return resp.StatusCode, out
	}
	if code, body := call("GET", "/v1/collections", "", ""); code != http.StatusUnauthorized || !strings.Contains(body["message"].(string), "bearer token") {
		t.Fatalf("no token: %d %v", code, body)
	}
	if code, body := call("POST", "/v1/collections", "tok", `{"name": "c", "config": {"dim": 2, "kernel": "linear"}}`); code != 200 || body["collection"].(map[string]any)["name"] != "c" {
		t.Fatalf("create: %d %v", code, body)
	}
	code, body := call("POST", "/v1/collections/c/upsert", "tok", `{"items": [
		{"id": "a", "cloud": {"dim": 2, "points": [1, 0]}, "attrs": {"color": "red", "tags": ["new", "sale", 3], "note": null}},
		{"id": "b", "cloud": {"dim": 2, "points": [0.9, 0.1, 0, 1], "weights": [1, 1]}, "attrs": {"color": "blue", "year": 2021}}]}`)
	if code != 200 || body["written"] != 2.0 {
		t.Fatalf("upsert: %d %v", code, body)
	}
	code, body = call("POST", "/v1/collections/c/search", "tok", `{"query": {"dim": 2, "points": [1, 0]}, "k": 3, "withAttrs": true, "filter": "color = \"blue\""}`)
	hits, _ := body["hits"].([]any)
	if code != 200 || len(hits) != 1 {
		t.Fatalf("search: %d %v", code, body)
	}
	hit := hits[0].(map[string]any)
	if attrs := hit["attrs"].(map[string]any); hit["id"] != "b" || attrs["color"] != "blue" || attrs["year"] != 2021.0 {
		t.Errorf("hit %v", hit)
	}
	// Lists and null: stored, filtered (CONTAINS, IN against a list) and
	// returned as plain JSON.
	for _, filter := range []string{`tags CONTAINS \"sale\"`, `tags IN (\"old\", \"new\") AND note = null`, `tags > 2`} {
		code, body = call("POST", "/v1/collections/c/search", "tok", `{"query": {"dim": 2, "points": [0, 1]}, "k": 3, "withAttrs": true, "filter": "`+filter+`"}`)
		hits, _ = body["hits"].([]any)
		if code != 200 || len(hits) != 1 {
			t.Fatalf("search %s: %d %v", filter, code, body)
		}
		hit := hits[0].(map[string]any)
		attrs := hit["attrs"].(map[string]any)
		if tags, _ := attrs["tags"].([]any); hit["id"] != "a" || len(tags) != 3 || tags[1] != "sale" || tags[2] != 3.0 || attrs["note"] != nil {
			t.Errorf("search %s: hit %v", filter, hit)
		}
		if _, ok := attrs["note"]; !ok {
			t.Errorf("search %s: null attribute missing: %v", filter, attrs)
		}
	}
	if code, body := call("POST", "/v1/collections/c/count", "tok", `{"filter": "tags != \"sale\""}`); code != 200 || body["count"] != "0" {
		t.Errorf("count tags != sale: %d %v (b has no tags, a has sale)", code, body)
	}
	if code, body := call("POST", "/v1/collections/c/count", "tok", `{}`); code != 200 || body["count"] != "2" {
		t.Errorf("count: %d %v (uint64 is a JSON string)", code, body)
	}
	if code, body := call("GET", "/v1/collections/nope", "tok", ""); code != http.StatusNotFound || !strings.Contains(body["message"].(string), `"nope"`) {
		t.Errorf("unknown collection: %d %v", code, body)
	}
	if code, body := call("POST", "/v1/collections/c/search", "tok", `{"query": {"dim": 2, "points": [1, 0]}, "filter": "color ="}`); code != http.StatusBadRequest || body["code"] != 3.0 {
		t.Errorf("bad filter: %d %v", code, body)
	}
	// A body that is not the request in JSON is the client's fault: 400,
	// not vanguard's 500 (Unknown).
	for _, tc := range []struct{ path, body string }{
		{"/v1/collections/c/upsert", "{\"items\": [{\"id\": \"a\xffb\", \"cloud\": {\"dim\": 2, \"points\": [1, 0]}}]}"},
		{"/v1/collections/c/upsert", `{"items": [}`},
		{"/v1/collections/c/search", `{"k": 1} x`},
		{"/v1/collections", `{"name": "x", "config": {"dim": 2}`},
	} {
		if code, body := call("POST", tc.path, "tok", tc.body); code != http.StatusBadRequest || body["code"] != 3.0 {
			t.Errorf("POST %s %q: %d %v, want 400 InvalidArgument", tc.path, tc.body, code, body)
		}
	}
	// The OpenAPI document describes the routes, protojson names included.
	code, doc := call("GET", "/v1/openapi.json", "", "")
	paths, _ := doc["paths"].(map[string]any)
	search, _ := paths["/v1/collections/{collection}/search"].(map[string]any)
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	props, _ := schemas["SearchRequest"].(map[string]any)["properties"].(map[string]any)
	if attrs, _ := schemas["Item"].(map[string]any)["properties"].(map[string]any)["attrs"].(map[string]any); attrs["additionalProperties"].(map[string]any)["$ref"] != nil || schemas["google.protobuf.Value"] != nil {
		t.Errorf("openapi.json: attribute values are plain JSON values, not a Value message: %v", attrs)
	}
	if get, _ := paths["/v1/collections/{collection}/items/{id}"].(map[string]any); get["get"] == nil {
		t.Errorf("openapi.json: no GET item route in %v", paths)
	}
	if code != 200 || search["post"] == nil || props["withAttrs"] == nil {
		t.Errorf("openapi.json: %d, search route %v, SearchRequest properties %v", code, search, props)
	}
	// gRPC on the same port.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok")
	if res, err := ts.cli.Count(ctx, &pb.CountRequest{Collection: "c"}); err != nil || res.Count != 2 {
		t.Errorf("gRPC on the HTTP port: %v, %v", res, err)
	}

	// One item by GET, its ID escaped in the path (a slash included).
	if code, body := call("POST", "/v1/collections/c/upsert", "tok", `{"items": [{"id": "x/y z", "cloud": {"dim": 2, "points": [0, 1]}, "attrs": {"k": 1}}]}`); code != 200 {
		t.Fatalf("upsert: %d %v", code, body)
	}
	code, body = call("GET", "/v1/collections/c/items/x%2Fy%20z", "tok", "")
	item, _ := body["item"].(map[string]any)
	if code != 200 || item["id"] != "x/y z" || item["attrs"].(map[string]any)["k"] != 1.0 || item["cloud"] == nil {
		t.Errorf("GET item: %d %v", code, body)
	}
	if code, body := call("GET", "/v1/collections/c/items/a", "tok", ""); code != 200 || body["item"].(map[string]any)["id"] != "a" {
		t.Errorf("GET item a: %d %v", code, body)
	}
	if code, body := call("GET", "/v1/collections/c/items/ghost", "tok", ""); code != http.StatusNotFound || !strings.Contains(body["message"].(string), "ghost") {
		t.Errorf("GET unknown item: %d %v", code, body)
	}
	if code, _ := call("GET", "/v1/collections/c/items/a", "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET item without a token: %d", code)
	}
	// The version travels in a header and in the health answer.
	if resp, err := http.Get(base + "/v1/health"); err != nil || resp.StatusCode != 200 {
		t.Errorf("health: %v %v", resp, err)
	} else {
		var h map[string]string
		json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if h["status"] != "SERVING" || h["version"] != "v0.0.0-test" {
			t.Errorf("health: %v", h)
		}
	}
	req, _ := http.NewRequest("GET", base+"/v1/collections", nil)
	req.Header.Set("Authorization", "Bearer tok")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.Header.Get("Wpcdb-Version") != "v0.0.0-test" {
		t.Errorf("REST response header wpcdb-version: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get(base + "/v1/nothing-here"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if code, body := call("GET", "/v1/snapshots", "tok", ""); code != http.StatusBadRequest || !strings.Contains(body["message"].(string), "snapshots are disabled") {
		t.Errorf("snapshots without a directory: %d %v", code, body)
	}
}
