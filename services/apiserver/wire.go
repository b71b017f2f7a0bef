package apiserver

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/formats/pbwire"
	"github.com/tistream/tistream/libs/pool"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// A pull's response is written straight from the rows read, as the bytes
// proto.Marshal makes of a PullTableResponse / PullDBResponse /
// PullTenantResponse (the three are `repeated PullEvent events = 1`):
// building a PullEvent, its oneof wrapper and a RowChange per row, then
// marshalling them and sizing them once more, was three objects and two
// passes per row on the api-server's hottest path. Clients decode the
// same bytes with their generated code (TestResponseBytesAreProtoMarshals
// pins them to proto.Marshal's).

// Field numbers of api.proto.
const (
	fRespEvents                                    = 1
	fEvRow, fEvResolved, fEvDDL                    = 1, 2, 3
	fRowTable, fRowCommit, fRowStart, fRowOp       = 1, 2, 3, 4
	fRowKey, fRowValue, fRowOld, fRowSchemaVersion = 5, 6, 7, 8
	fResolvedTs                                    = 1
)

// response is one pull response message's encoding: its events entries.
// The servers' codec (libs/grpcx) copies its bytes into a buffer of
// gRPC's. They are a copy of the rows' bytes, which point into read
// buffers the pull recycles once the message is sent
// (pool.Puller.Release); the batcher writes its next message into the
// same buffer once SendMsg has returned (batch.go).
type response struct{ b []byte }

func (r *response) WireSize() int              { return len(r.b) }
func (r *response) AppendWire(b []byte) []byte { return append(b, r.b...) }

// appendRow appends a row event entry.
func appendRow(b []byte, r *pool.Row, tableID, version int64) []byte {
	op := apiv1.Op_OP_PUT
	if r.Op == formatv1.Op_OP_DELETE {
		op = apiv1.Op_OP_DELETE
	}
	n := pbwire.SizeUint(fRowTable, uint64(tableID)) + pbwire.SizeUint(fRowCommit, r.CommitTs) + pbwire.SizeUint(fRowStart, r.StartTs) +
		pbwire.SizeUint(fRowOp, uint64(op)) + pbwire.SizeBytes(fRowKey, r.Key) + pbwire.SizeBytes(fRowValue, r.Value) +
		pbwire.SizeBytes(fRowOld, r.OldValue) + pbwire.SizeUint(fRowSchemaVersion, uint64(version))
	b = pbwire.AppendFieldHead(b, fRespEvents, pbwire.SizeField(fEvRow, n))
	b = pbwire.AppendFieldHead(b, fEvRow, n)
	b = pbwire.AppendUint(b, fRowTable, uint64(tableID))
	b = pbwire.AppendUint(b, fRowCommit, r.CommitTs)
	b = pbwire.AppendUint(b, fRowStart, r.StartTs)
	b = pbwire.AppendUint(b, fRowOp, uint64(op))
	b = pbwire.AppendBytes(b, fRowKey, r.Key)
	b = pbwire.AppendBytes(b, fRowValue, r.Value)
	b = pbwire.AppendBytes(b, fRowOld, r.OldValue)
	return pbwire.AppendUint(b, fRowSchemaVersion, uint64(version))
}

// appendResolved appends a resolved event entry.
func appendResolved(b []byte, ts uint64) []byte {
	n := pbwire.SizeUint(fResolvedTs, ts)
	b = pbwire.AppendFieldHead(b, fRespEvents, pbwire.SizeField(fEvResolved, n))
	b = pbwire.AppendFieldHead(b, fEvResolved, n)
	return pbwire.AppendUint(b, fResolvedTs, ts)
}

// appendDDL appends a DDL event entry (rare: the generated code encodes
// the DDL itself).
func appendDDL(b []byte, d *apiv1.DDL) ([]byte, error) {
	m, err := proto.Marshal(d)
	if err != nil {
		return b, fmt.Errorf("encode DDL event: %w", err)
	}
	b = pbwire.AppendFieldHead(b, fRespEvents, pbwire.SizeField(fEvDDL, len(m)))
	b = pbwire.AppendFieldHead(b, fEvDDL, len(m))
	return append(b, m...), nil
}
