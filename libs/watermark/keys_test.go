package watermark

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// An end of "" is +infinity, a start of "" is -infinity: the helpers must
// never confuse the two.
func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want []keyRange
	}{
		{nil, []keyRange{}},
		{[]keyRange{{"a", "b"}, {"c", "d"}}, []keyRange{{"a", "b"}, {"c", "d"}}},
		{[]keyRange{{"c", "d"}, {"a", "b"}}, []keyRange{{"a", "b"}, {"c", "d"}}},
		{[]keyRange{{"a", "b"}, {"b", "c"}}, []keyRange{{"a", "c"}}},
		{[]keyRange{{"a", "c"}, {"b", "d"}}, []keyRange{{"a", "d"}}},
		{[]keyRange{{"", "b"}, {"b", ""}}, []keyRange{{"", ""}}},
		{[]keyRange{{"a", ""}, {"b", "c"}}, []keyRange{{"a", ""}}},
		{[]keyRange{{"b", "a"}, {"c", "c"}}, []keyRange{}},
		{[]keyRange{{"", "a"}, {"c", ""}}, []keyRange{{"", "a"}, {"c", ""}}},
	} {
		got := normalize(append([]keyRange(nil), tc.in...))
		if len(tc.want) == 0 {
			require.Empty(t, got, "%v", tc.in)
			continue
		}
		require.Equal(t, tc.want, got, "%v", tc.in)
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		rs   []keyRange
		r    keyRange
		want bool
	}{
		{nil, keyRange{"a", "b"}, false},
		{[]keyRange{{"a", "c"}}, keyRange{"a", "b"}, true},
		{[]keyRange{{"a", "c"}}, keyRange{"a", "c"}, true},
		{[]keyRange{{"a", "c"}}, keyRange{"a", "d"}, false},
		{[]keyRange{{"b", "c"}}, keyRange{"a", "c"}, false},
		{[]keyRange{{"", "b"}, {"c", ""}}, keyRange{"", ""}, false},
		{[]keyRange{{"", ""}}, keyRange{"", ""}, true},
		{[]keyRange{{"a", ""}}, keyRange{"b", ""}, true},
		{[]keyRange{{"a", "z"}}, keyRange{"b", ""}, false},
	} {
		require.Equal(t, tc.want, covers(tc.rs, tc.r), "%v covers %v", tc.rs, tc.r)
	}
}

func TestSubtract(t *testing.T) {
	for _, tc := range []struct {
		r    keyRange
		cut  []keyRange
		want []keyRange
	}{
		{keyRange{"a", "d"}, nil, []keyRange{{"a", "d"}}},
		{keyRange{"a", "d"}, []keyRange{{"b", "c"}}, []keyRange{{"a", "b"}, {"c", "d"}}},
		{keyRange{"a", "d"}, []keyRange{{"a", "d"}}, nil},
		{keyRange{"", "d"}, []keyRange{{"", "b"}}, []keyRange{{"b", "d"}}},
		{keyRange{"", ""}, []keyRange{{"", "b"}}, []keyRange{{"b", ""}}},
		{keyRange{"", ""}, []keyRange{{"b", ""}}, []keyRange{{"", "b"}}},
		{keyRange{"", ""}, []keyRange{{"", ""}}, nil},
		{keyRange{"a", "d"}, []keyRange{{"x", "y"}}, []keyRange{{"a", "d"}}},
		{keyRange{"a", ""}, []keyRange{{"b", "c"}, {"e", ""}}, []keyRange{{"a", "b"}, {"c", "e"}}},
	} {
		require.Equal(t, tc.want, subtract(tc.r, tc.cut), "%v minus %v", tc.r, tc.cut)
	}
}

func TestRefOrder(t *testing.T) {
	a := Ref{RegionID: 9, Version: 1, Term: 9}
	b := Ref{RegionID: 1, Version: 2, Term: 1}
	c := Ref{RegionID: 1, Version: 2, Term: 2}
	d := Ref{RegionID: 2, Version: 2, Term: 2}
	for _, pair := range [][2]Ref{{{}, a}, {a, b}, {b, c}, {c, d}} {
		require.Equal(t, -1, pair[0].Compare(pair[1]))
		require.Equal(t, 1, pair[1].Compare(pair[0]))
	}
	require.Zero(t, c.Compare(c))
	require.Equal(t, "r1/v2/t1", b.String())
}
