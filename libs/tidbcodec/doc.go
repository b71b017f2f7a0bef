// Package tidbcodec reads and writes the on-disk encodings of TiDB that a
// change-data stream has to understand, without importing TiDB itself:
//
//   - memcomparable integers and byte strings (memcmp.go), the building block
//     of every TiKV key;
//   - table keys: t{tableID}_r{handle} record keys, t{tableID}_i{indexID}
//     index prefixes, table and record spans, and the memcomparable form in
//     which TiKV/PD report region boundaries (keys.go, spans.go, region.go);
//   - row format v2, the value of a record key (row_*.go), over a small typed
//     Value (value.go) with TiDB's decimal and packed-time forms (decimal.go,
//     packedtime.go);
//   - the meta range m..., where TiDB keeps database and table definitions in
//     hashes DBs -> DB:{id} and DB:{id} -> Table:{id} (meta.go);
//   - the JSON of those definitions, DBInfo and TableInfo (schema_*.go).
//
// It depends on the standard library only: importing TiDB would pin the whole
// product to TiDB's grpc, etcd and kvproto versions. That the encodings are
// byte-for-byte TiDB's is proven by the separate conformance module
// (./conformance, run with GOWORK=off), which imports TiDB in tests only.
// docs/formats/tidb-encodings.md describes every layout.
//
// Decoders never panic on bad input: every problem is a *DecodeError naming
// what was being decoded, the byte offset and what was wrong; errors.Is(err,
// ErrMalformed) holds for all of them.
package tidbcodec
