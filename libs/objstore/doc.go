// Package objstore is the narrow object-storage interface every TiStream stage
// reads and writes through, with three implementations:
//
//   - Memory (mem://): a map behind a mutex, for unit tests.
//   - LocalFS (file://): the embedded default; key "a/b/c" is the file
//     <root>/a/b/c, written through <root>/.tmp so a reader never sees a
//     partial object.
//   - S3 (s3://): any S3-compatible server through aws-sdk-go-v2.
//
// All three share one key validation (ValidateKey) and one contract, checked
// by package objstoretest against each of them. The semantics every caller may
// rely on are:
//
//   - Put is atomic: a reader sees the old object or the whole new one.
//   - PutIfAbsent is an exclusive create: of many concurrent callers exactly
//     one succeeds, the others get ErrExists. Fencing builds on this.
//   - List returns keys in byte-wise order of the full key, strictly after
//     startAfter, so paging with the last key returned sees every key once.
//   - A key that is a path prefix of another ("a/b" and "a/b/c") cannot exist
//     in a file store: keep key schemes free of such pairs (see
//     docs/object-storage.md).
//
// An object can also be written in parts (PutParts, PutIfAbsentParts: the
// parts' concatenation, with the same semantics), which the stores
// implementing the optional PartsPutter write without joining them first.
//
// The interface stays small on purpose: wrappers that add metrics, faults or
// caching only have seven methods to forward (and PartsPutter's two when
// they can pass parts on; without them they get the joined object).
package objstore
