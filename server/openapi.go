package server

import (
	"encoding/json"
	"regexp"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// openAPIDoc is the OpenAPI 3.0 document of the HTTP/JSON routes, made
// from the proto's descriptors and httpRoutes, so it cannot drift from
// what is served. Field names and types follow protojson: 64-bit integers
// are strings, enums their value names, bytes base64.
func openAPIDoc() ([]byte, error) {
	svc := pb.File_wpcdb_v1_wpcdb_proto.Services().ByName("WPCDBService")
	schemas := map[string]any{}
	var addMessage func(md protoreflect.MessageDescriptor) string
	fieldSchema := func(fd protoreflect.FieldDescriptor) map[string]any {
		var s map[string]any
		switch fd.Kind() {
		case protoreflect.BoolKind:
			s = map[string]any{"type": "boolean"}
		case protoreflect.StringKind:
			s = map[string]any{"type": "string"}
		case protoreflect.BytesKind:
			s = map[string]any{"type": "string", "format": "byte"}
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			s = map[string]any{"type": "integer", "format": "int32"}
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			s = map[string]any{"type": "integer", "format": "int64", "minimum": 0}
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
			protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			s = map[string]any{"type": "string", "format": "int64"}
		case protoreflect.FloatKind:
			s = map[string]any{"type": "number", "format": "float"}
		case protoreflect.DoubleKind:
			s = map[string]any{"type": "number", "format": "double"}
		case protoreflect.EnumKind:
			var names []string
			vals := fd.Enum().Values()
			for i := 0; i < vals.Len(); i++ {
				names = append(names, string(vals.Get(i).Name()))
			}
			s = map[string]any{"type": "string", "enum": names}
		case protoreflect.MessageKind:
			if fd.Message().FullName() == "google.protobuf.Value" {
				// protojson writes a Value as the plain JSON value.
				s = map[string]any{"nullable": true, "description": "an attribute value: a string, number, boolean, null, or a list of strings, numbers and booleans"}
				break
			}
			s = map[string]any{"$ref": "#/components/schemas/" + addMessage(fd.Message())}
		}
		return s
	}
	addMessage = func(md protoreflect.MessageDescriptor) string {
		name := strings.TrimPrefix(string(md.FullName()), "wpcdb.v1.")
		if _, ok := schemas[name]; ok {
			return name
		}
		props := map[string]any{}
		obj := map[string]any{"type": "object", "properties": props}
		schemas[name] = obj
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			var s map[string]any
			switch {
			case fd.IsMap():
				s = map[string]any{"type": "object", "additionalProperties": fieldSchema(fd.MapValue())}
			case fd.IsList():
				s = map[string]any{"type": "array", "items": fieldSchema(fd)}
			default:
				s = fieldSchema(fd)
			}
			props[fd.JSONName()] = s
		}
		return name
	}
	status := map[string]any{"type": "object", "properties": map[string]any{
		"code": map[string]any{"type": "integer", "description": "the gRPC status code"}, "message": map[string]any{"type": "string"},
	}}
	schemas["Status"] = status
	param := regexp.MustCompile(`\{([a-z_]+)(=[^}]*)?\}`) // {name} or {name=**}
	paths := map[string]any{}
	for _, r := range httpRoutes {
		md := svc.Methods().ByName(protoreflect.Name(r.method))
		op := map[string]any{
			"operationId": r.method,
			"security":    []any{map[string]any{"bearer": []any{}}},
			"responses": map[string]any{
				"200":     map[string]any{"description": "OK", "content": jsonContent(addMessage(md.Output()))},
				"default": map[string]any{"description": "an error: the HTTP status follows the gRPC code", "content": jsonContent("Status")},
			},
		}
		var params []any
		for _, m := range param.FindAllStringSubmatch(r.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.body == "*" {
			op["requestBody"] = map[string]any{"required": true, "content": jsonContent(addMessage(md.Input()))}
		}
		path := param.ReplaceAllString(r.path, "{$1}")
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		item[strings.ToLower(r.verb)] = op
	}
	return json.MarshalIndent(map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "wpcdb HTTP/JSON API (" + ServiceName + ")", "version": "v1"},
		"paths":   paths,
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}, "", "  ")
}

func jsonContent(schema string) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + schema}}}
}
