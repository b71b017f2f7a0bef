// Package truth is the JSON Lines model shared by the simulator (which writes
// the truth file: every committed row change), `tistream pull` (which prints
// the pulled stream) and `tistream verify` (which checks one against the
// other). docs/verify.md describes the formats field by field.
//
// One line is one JSON object:
//
//	{"type":"row","tenant":1,"table_id":101,"commit_ts":9,"start_ts":7,"op":"put","key":"7480","value":"0a01"}
//	{"type":"resolved","ts":12}
//	{"type":"ddl","tenant":1,"commit_ts":5,"db_id":2,"table_id":101,"action":"add_column","schema_version":3}
//	{"type":"end","resolved_ts":12}
//
// A line without "type" is a row. Lines of any other type are returned as
// KindOther so old readers skip them instead of failing, and fields a reader
// does not know are ignored, which leaves room for new optional fields.
//
// Timestamps are uint64 and exceed 2^53, so numbers are parsed by hand as
// integers and never pass through float64. The reader and writer are
// hand-rolled rather than encoding/json because the simulator writes and the
// verifier reads millions of lines per run.
//
// The Reader never panics on bad input: every problem is a *LineError naming
// the input, the line number and the field, e.g.
//
//	truth.jsonl:123: bad "commit_ts": negative number
package truth
