// Package conformance proves, in tests only, that libs/tidbcodec writes and
// reads TiDB's encodings byte-for-byte like TiDB itself: memcomparable
// forms, table and region keys, meta keys (driving TiDB's own meta.Mutator),
// row format v2 (random rows over every supported type, both directions),
// and the schema JSON (including TableInfo built by TiDB's DDL code).
// Differential fuzz targets feed the same inputs to both codecs.
//
// It is a separate module, outside go.work, because it imports TiDB, whose
// pinned grpc, etcd and kvproto versions must never reach the product. Run
// it with GOWORK=off:
//
//	cd libs/tidbcodec/conformance && GOWORK=off go test ./...
//
// docs/formats/tidb-encodings.md describes the encodings and what is
// compared here.
package conformance
