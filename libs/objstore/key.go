package objstore

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// tmpDirName is the first path segment LocalFS keeps its temporary files
// under. It is reserved for every store, so a key valid on one store is valid
// on all of them.
const tmpDirName = ".tmp"

// ValidateKey reports whether key may name an object. The rules are the
// intersection of what S3 and a POSIX file system accept, so a key scheme that
// passes here works on every store:
//   - not empty and at most MaxKeyLen bytes;
//   - valid UTF-8 without NUL bytes (S3 keys travel in XML);
//   - no leading or trailing "/", no empty segment ("//");
//   - no "." or ".." segment (they would walk the file system);
//   - not under the reserved top-level segment ".tmp".
//
// The error matches ErrInvalidKey and names the key and the rule broken.
func ValidateKey(key string) error {
	if rule := brokenKeyRule(key); rule != "" {
		return fmt.Errorf("%w %s: %s", ErrInvalidKey, quoteKey(key), rule)
	}
	return nil
}

func brokenKeyRule(key string) string {
	switch {
	case key == "":
		return "key is empty"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("key is %d bytes, longer than %d", len(key), MaxKeyLen)
	case strings.IndexByte(key, 0) >= 0:
		return "key contains a NUL byte"
	case !utf8.ValidString(key):
		return "key is not valid UTF-8"
	case key[0] == '/':
		return `key starts with "/"`
	case key[len(key)-1] == '/':
		return `key ends with "/"`
	case strings.Contains(key, "//"):
		return `key contains an empty path segment ("//")`
	}
	first := true
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return fmt.Sprintf("key contains a %q path segment", seg)
		}
		if first && seg == tmpDirName {
			return fmt.Sprintf("the top-level segment %q is reserved", tmpDirName)
		}
		first = false
	}
	return ""
}

// quoteKey quotes a key for an error message, shortening keys too long to be
// read (an over-long key is itself the usual reason for the error).
func quoteKey(key string) string {
	const show = 64
	if len(key) <= show*2 {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%q...(%d bytes)", key[:show], len(key))
}
