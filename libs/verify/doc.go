// Package verify checks a pulled change stream against the truth file the
// simulator wrote: the correctness contract of docs/design ARCHITECTURE.md §5
// as far as one pull can show it. docs/verify.md gives every rule exactly.
//
// Check reads the whole truth first and indexes the rows in scope by
// (tenant, key, commit_ts), then streams the pulled lines once, checking each
// row as it arrives (no phantoms, exactly once, ordered, watermark-safe, in
// scope, right content and schema version) and, at the end, that every truth
// row the stream's last resolved ts covers was delivered (complete) and that
// the stream got as far as the truth's end (live).
//
// Memory is what bounds the truth size, so the index holds no strings and no
// pointers: keys live in a chunked byte arena, values are kept only as a
// hash, and the map's entries are plain integers the garbage collector never
// scans (about 130 bytes per row plus the key). Violations are counted; only
// the first few of each kind are kept as examples, so a stream with millions
// of problems still yields a one-screen report.
package verify
