package etcdx

import (
	"strconv"
	"strings"

	"github.com/tistream/tistream/libs/layout"
)

// The value of a publication notice (PublishedKey), version 1:
//
//	v1 {group} {seq}
//
// fields separated by one space: the version, the group the sorter
// publishes the tenant in (layout.ValidGroupID), and the seq of the newest
// publication it had written there when it put the value (decimal, > 0).
// The sorter puts it only after that publication is written, so a reader
// may rely on it existing (or having existed: segmenting and retention
// delete publications). A reader ignores fields after the third, so later
// fields can be added without a new version. Sorters before version 1 put
// "{group}/{seq}", which means the same and is read as such. Any other
// value (a later version, garbage) names no publication: the notice still
// wakes the tenant's readers, it just tells them nothing more.

// noticeVersion is the first field of the values this package writes.
const noticeVersion = "v1"

// Notice is one publication notice as a reader sees it.
type Notice struct {
	Tenant uint64
	// Sorter is the notice key's last part (the sorter that put it).
	Sorter string
	// Group and Seq name the publication announced: the newest of the group
	// when the sorter put the notice. Group is "" when the notice names none
	// (a value this reader does not understand, or a wake-up after the
	// watch was re-established).
	Group string
	Seq   uint64
}

// Named reports whether the notice names a publication.
func (n Notice) Named() bool { return n.Group != "" }

// NoticeValue is the value announcing publication seq of group.
func NoticeValue(group string, seq uint64) string {
	return noticeVersion + " " + group + " " + u(seq)
}

// ParseNoticeValue returns the publication a notice's value names; ok is
// false for a value that names none.
func ParseNoticeValue(v string) (group string, seq uint64, ok bool) {
	if rest, found := strings.CutPrefix(v, noticeVersion+" "); found {
		f := strings.SplitN(rest, " ", 3)
		if len(f) < 2 {
			return "", 0, false
		}
		group, seq, ok = checkNotice(f[0], f[1])
		return group, seq, ok
	}
	// Before version 1: "{group}/{seq}" (a group id holds no '/' or ' ').
	g, s, found := strings.Cut(v, "/")
	if !found {
		return "", 0, false
	}
	return checkNotice(g, s)
}

func checkNotice(group, seq string) (string, uint64, bool) {
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || n == 0 || !layout.ValidGroupID(group) {
		return "", 0, false
	}
	return group, n, true
}

// parseNotice reads a notice from its key and value; ok is false when the
// key is not a notice's.
func parseNotice(key, value []byte) (Notice, bool) {
	rest, ok := strings.CutPrefix(string(key), PublishedPrefix)
	if !ok {
		return Notice{}, false
	}
	t, sorter, ok := strings.Cut(rest, "/")
	if !ok {
		return Notice{}, false
	}
	tenant, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return Notice{}, false
	}
	n := Notice{Tenant: tenant, Sorter: sorter}
	n.Group, n.Seq, _ = ParseNoticeValue(string(value))
	return n, true
}
