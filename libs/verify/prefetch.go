package verify

import (
	"io"

	"github.com/tistream/tistream/libs/truth"
)

// Decoding a line costs about as much as checking it, so a goroutine decodes
// ahead in batches while the checker works on the previous ones: with two
// cores the two halves overlap. Batches are recycled, so memory stays at a
// few thousand lines.

const (
	batchLines = 512
	batches    = 6 // in the channel, being filled, being checked
)

type batch struct {
	lines []truth.Line
	data  []byte // keys and values of the batch's rows, back to back
	offs  []int  // where each line's key starts in data
	err   error  // why decoding stopped after these lines (io.EOF at the end)
}

// fill decodes up to batchLines lines, copying rows' keys and values, since
// the Reader reuses its buffers.
func (b *batch) fill(r *truth.Reader) {
	b.lines, b.data, b.offs, b.err = b.lines[:0], b.data[:0], b.offs[:0], nil
	for len(b.lines) < batchLines {
		l, err := r.Next()
		if err != nil {
			b.err = err
			break
		}
		b.offs = append(b.offs, len(b.data))
		if l.Kind == truth.KindRow {
			b.data = append(b.data, l.Row.Key...)
			b.data = append(b.data, l.Row.Value...)
		}
		b.lines = append(b.lines, *l)
	}
	// Point rows into data only now that it has stopped growing.
	for i := range b.lines {
		if row := &b.lines[i].Row; b.lines[i].Kind == truth.KindRow {
			k, v := b.offs[i], b.offs[i]+len(row.Key)
			row.Key = b.data[k:v:v]
			row.Value = b.data[v : v+len(row.Value) : v+len(row.Value)]
		}
	}
}

type prefetcher struct {
	full chan *batch
	free chan *batch
	done chan struct{}
	cur  *batch
	i    int
}

// prefetch starts decoding r. Call stop when done with it, even early.
func prefetch(r *truth.Reader) *prefetcher {
	p := &prefetcher{
		full: make(chan *batch, batches-2),
		free: make(chan *batch, batches),
		done: make(chan struct{}),
	}
	for range batches {
		p.free <- &batch{}
	}
	go p.run(r)
	return p
}

func (p *prefetcher) run(r *truth.Reader) {
	for {
		var b *batch
		select {
		case b = <-p.free:
		case <-p.done:
			return
		}
		b.fill(r)
		select {
		case p.full <- b:
		case <-p.done:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// next returns the next line (valid until the following call) or the
// Reader's error, io.EOF at the end.
func (p *prefetcher) next() (*truth.Line, error) {
	for {
		if b := p.cur; b != nil {
			if p.i < len(b.lines) {
				p.i++
				return &b.lines[p.i-1], nil
			}
			if b.err != nil {
				return nil, b.err
			}
			p.free <- b // never blocks: free holds every batch
		}
		b, ok := <-p.full
		if !ok {
			return nil, io.ErrUnexpectedEOF // run always sends a batch with err before leaving
		}
		p.cur, p.i = b, 0
	}
}

func (p *prefetcher) stop() { close(p.done) }
