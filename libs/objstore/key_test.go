package objstore

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateKey(t *testing.T) {
	for _, c := range []struct {
		key  string
		rule string // "" = valid
	}{
		{"a", ""},
		{"a/b/c", ""},
		{".hidden/x..y/..z/z..", ""},
		{"tmp/.tmp", ""},
		{".tmpx", ""},
		{"ünïcødé €", ""},
		{strings.Repeat("k", MaxKeyLen), ""},
		{"", "key is empty"},
		{strings.Repeat("k", MaxKeyLen+1), "longer than 1024"},
		{"a\x00b", "NUL"},
		{"a\xffb", "UTF-8"},
		{"/a", `starts with "/"`},
		{"a/", `ends with "/"`},
		{"a//b", "empty path segment"},
		{".", `"." path segment`},
		{"a/./b", `"." path segment`},
		{"..", `".." path segment`},
		{"a/../b", `".." path segment`},
		{"a/..", `".." path segment`},
		{".tmp", "reserved"},
		{".tmp/put-1", "reserved"},
	} {
		err := ValidateKey(c.key)
		if c.rule == "" {
			require.NoError(t, err, "%q", c.key)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidKey, "%q", c.key)
		require.ErrorContains(t, err, c.rule)
		if len(c.key) < 100 {
			require.ErrorContains(t, err, quoteKey(c.key), "the error names the key")
		}
	}
}

func TestQuoteKeyShortensLongKeys(t *testing.T) {
	q := quoteKey(strings.Repeat("x", 5000))
	require.Less(t, len(q), 100)
	require.Contains(t, q, "5000 bytes")
}
