package storefile

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/stretchr/testify/require"
)

// TestAppendRowGroups: rows of one region share an event up to
// MaxRowsPerEvent, regions change events within a message up to
// MaxEventsPerBatch, and a resolved ts message is never extended.
func TestAppendRowGroups(t *testing.T) {
	row := &cdcpb.Event_Row{StartTs: 1, Key: []byte("k")}
	var msgs []*cdcpb.ChangeDataEvent
	add := func(region uint64) {
		var last *cdcpb.ChangeDataEvent
		if len(msgs) > 0 {
			last = msgs[len(msgs)-1]
		}
		if ev := AppendRow(last, region, row); ev != nil {
			msgs = append(msgs, ev)
		}
	}
	for range MaxRowsPerEvent + 1 {
		add(2)
	}
	require.Len(t, msgs, 1)
	require.Len(t, msgs[0].Events, 2)
	require.Len(t, msgs[0].Events[0].GetEntries().Entries, MaxRowsPerEvent)
	for r := range MaxEventsPerBatch {
		add(uint64(10 + r))
	}
	require.Len(t, msgs, 2, "a full message starts a new one")
	msgs = append(msgs, &cdcpb.ChangeDataEvent{ResolvedTs: &cdcpb.ResolvedTs{Regions: []uint64{2}, Ts: 5}})
	add(2)
	require.Len(t, msgs, 4, "a resolved ts message is never extended")
}
