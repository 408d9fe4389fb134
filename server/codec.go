package server

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the proto codec requestCodec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// requestCodec is grpc-go's proto codec, except that a received message
// that does not decode is the client's error, InvalidArgument naming the
// field, where grpc-go (v1.85) sends Internal ("failed to unmarshal the
// received message") itself, before any handler or interceptor could
// change it. So Unmarshal reports no error: it empties the message and
// keeps the error for it in undecoded, where the receive gate's read
// (recvHold.read, which every method of the server reads through) takes
// it back and fails the request with it.
type requestCodec struct{ encoding.CodecV2 }

func newRequestCodec() requestCodec {
	return requestCodec{encoding.GetCodecV2("proto")}
}

// undecoded holds the error of each message that did not decode, until
// the read that asked for it takes it.
var undecoded sync.Map // proto.Message → error

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	// protobuf-go's fast path names no field ("string field contains
	// invalid UTF-8"): find it in the bytes.
	if path := invalidUTF8Field(m.ProtoReflect().Descriptor(), data.Materialize()); path != "" {
		err = invalid("request: %s is not valid UTF-8", path)
	} else {
		err = invalid("request: the message does not decode: %v", err)
	}
	proto.Reset(m)
	undecoded.Store(m, err)
	return nil
}

// takeUndecoded returns the error of m's decoding, if it failed.
func takeUndecoded(m any) error {
	if e, ok := undecoded.LoadAndDelete(m); ok {
		return e.(error)
	}
	return nil
}

// invalidUTF8Field is the path (items[2].id, attrs.key) of the first
// string field in b, a message of md, that is not UTF-8; empty if none.
func invalidUTF8Field(md protoreflect.MessageDescriptor, b []byte) string {
	seen := map[protowire.Number]int{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if typ != protowire.BytesType || fd == nil {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		name := string(fd.Name())
		if fd.IsList() {
			name = fmt.Sprintf("%s[%d]", name, seen[num])
		}
		seen[num]++
		switch fd.Kind() {
		case protoreflect.StringKind:
			if !utf8.Valid(v) {
				return name
			}
		case protoreflect.MessageKind:
			if p := invalidUTF8Field(fd.Message(), v); p != "" {
				return name + "." + p
			}
		}
	}
	return ""
}
