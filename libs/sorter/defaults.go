package sorter

import "time"

// DefaultFlushInterval is how often, at most, a sorter process publishes
// the ranges it holds for a tenant: the sorter service's flush_interval
// default. The ordering core's benchmark (sorterbench) flushes as often,
// so that its figures are those of a sorter on default settings; both take
// it from here, so the two cannot drift apart.
const DefaultFlushInterval = 200 * time.Millisecond
