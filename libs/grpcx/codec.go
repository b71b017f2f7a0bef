package grpcx

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// WireMarshaler is a message that writes its own protobuf encoding (for
// the largest messages, written without building generated messages:
// routepb.Request).
type WireMarshaler interface {
	// WireSize is the encoding's size in bytes.
	WireSize() int
	// AppendWire appends the encoding to b.
	AppendWire(b []byte) []byte
}

// WireUnmarshaler is a message that reads its own protobuf encoding
// (routepb.Received). UnmarshalWire may keep b: it is the message's own.
type WireUnmarshaler interface {
	UnmarshalWire(b []byte) error
}

// WireBufferer is a WireUnmarshaler that provides the buffer its encoding
// is copied into (out of the transport's buffers) before UnmarshalWire:
// one it recycles (routepb.Received), instead of a new one per message.
type WireBufferer interface {
	WireBuffer(n int) []byte
}

// wireCodec is gRPC's "proto" codec, except for messages that encode or
// decode themselves. The bytes on the wire are protobuf either way, and
// the content-subtype stays "proto", so a peer using the stock codec and
// generated messages reads and writes the same messages.
type wireCodec struct{ proto encoding.CodecV2 }

var codec = wireCodec{proto: encoding.GetCodecV2(protocodec.Name)}

// Codec is the codec every server of NewServerWith uses and a client call
// passes (CallCodec) to send a WireMarshaler.
func Codec() encoding.CodecV2 { return codec }

// CallCodec is the call option for a client call whose messages include
// WireMarshaler or WireUnmarshaler values (passed to SendMsg / RecvMsg).
func CallCodec() grpc.CallOption { return grpc.ForceCodecV2(codec) }

func (c wireCodec) Name() string { return protocodec.Name }

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(WireMarshaler)
	if !ok {
		return c.proto.Marshal(v)
	}
	n := m.WireSize()
	if mem.IsBelowBufferPoolingThreshold(n) {
		return mem.BufferSlice{mem.SliceBuffer(m.AppendWire(make([]byte, 0, n)))}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(n)
	b := m.AppendWire((*buf)[:0])
	if len(b) != n || &b[0] != &(*buf)[0] {
		pool.Put(buf)
		return nil, fmt.Errorf("grpcx: %T wrote %d bytes, said %d", v, len(b), n)
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal hands a WireUnmarshaler a copy of the message's bytes of its
// own (the one allocation its decoding makes: what it decodes may point
// into it): gRPC reuses the buffers it received them in.
func (c wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(WireUnmarshaler)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	if p, ok := m.(WireBufferer); ok {
		b := p.WireBuffer(data.Len())
		if len(b) != data.Len() {
			return fmt.Errorf("grpcx: %T gave a buffer of %d bytes for %d", v, len(b), data.Len())
		}
		data.CopyTo(b)
		return m.UnmarshalWire(b)
	}
	return m.UnmarshalWire(data.Materialize())
}
