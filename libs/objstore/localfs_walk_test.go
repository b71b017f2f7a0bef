package objstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLocalFSListReadsOnlyNeededDirs checks that List enters only the
// subtrees a page can come from: the tree is large in total, a page is not.
func TestLocalFSListReadsOnlyNeededDirs(t *testing.T) {
	ctx := context.Background()
	s, err := NewLocalFS(t.TempDir())
	require.NoError(t, err)
	for _, d := range []string{"x", "y", "z"} {
		for i := range 10 {
			require.NoError(t, s.Put(ctx, fmt.Sprintf("%s/%d/obj", d, i), nil))
		}
	}
	var read []string
	s.onReadDir = func(rel string) { read = append(read, rel) }
	for _, c := range []struct {
		prefix, startAfter string
		limit              int
		want               []string // directories read, in order
	}{
		{"y/", "", 0, []string{"y/", "y/0/", "y/1/", "y/2/", "y/3/", "y/4/", "y/5/", "y/6/", "y/7/", "y/8/", "y/9/"}},
		{"y/3", "", 0, []string{"y/", "y/3/"}},
		{"y/3/ob", "", 0, []string{"y/3/"}},
		{"", "", 2, []string{"", "x/", "x/0/", "x/1/", "x/2/"}},
		{"", "y/5/obj", 2, []string{"", "y/", "y/5/", "y/6/", "y/7/", "y/8/"}},
		{"x/", "y", 0, []string{"x/"}},
		{"nope/", "", 0, []string{"nope/"}},
	} {
		read = nil
		_, _, err := s.List(ctx, c.prefix, c.startAfter, c.limit)
		require.NoError(t, err)
		require.Equal(t, c.want, read, "prefix %q after %q limit %d", c.prefix, c.startAfter, c.limit)
	}
}
