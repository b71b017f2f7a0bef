package schema

import "sync/atomic"

// LoadProgress is how far a load of a history has got: the table versions
// put into it, of the total its file announced (a schema snapshot's
// table_count, a persisted history's header). Another goroutine reads it
// to report on a long load: 1,000,000 tables take a registry 10-20 s.
// The zero value is ready; a nil *LoadProgress counts nothing.
type LoadProgress struct {
	tables, total atomic.Int64
}

// Tables returns the table versions loaded so far and the total the file
// announced (0 until its header is read).
func (p *LoadProgress) Tables() (done, total int64) {
	return p.tables.Load(), p.total.Load()
}

func (p *LoadProgress) announce(total uint64) {
	if p != nil {
		p.total.Store(int64(min(total, 1<<62)))
	}
}

func (p *LoadProgress) table() {
	if p != nil {
		p.tables.Add(1)
	}
}
