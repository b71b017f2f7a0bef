package sortbuf

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/google/btree"
)

// memSpill is the matcher's SpillStore of a store without disk
// (NewMemory): a B-tree of the same spill keys Engine writes (the uid part
// is left zero: one tree per range).
type memSpill struct {
	mu      sync.Mutex
	items   *btree.BTreeG[entry]
	dropped bool
}

var _ SpillStore = (*memSpill)(nil)

func newMemSpill() *memSpill { return &memSpill{items: btree.NewG(16, lessEntry)} }

// entry is a stored key and value.
type entry struct {
	k []byte
	v []byte
}

func lessEntry(a, b entry) bool { return bytes.Compare(a.k, b.k) < 0 }

func spillEntryKey(startTs uint64, key []byte) []byte {
	return appendSpillKey(nil, 0, startTs, key)
}

func (s *memSpill) Put(startTs uint64, key, value []byte) error {
	if len(key)+len(value) > MaxRowBytes {
		return fmt.Errorf("%w: spilled prewrite of %d bytes", errInvalidRow, len(key)+len(value))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return ErrClosed
	}
	s.items.ReplaceOrInsert(entry{k: spillEntryKey(startTs, key), v: bytes.Clone(value)})
	return nil
}

func (s *memSpill) Get(startTs uint64, key []byte) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return nil, false, ErrClosed
	}
	e, ok := s.items.Get(entry{k: spillEntryKey(startTs, key)})
	if !ok {
		return nil, false, nil
	}
	return append([]byte{}, e.v...), true, nil
}

func (s *memSpill) Delete(startTs uint64, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return ErrClosed
	}
	s.items.Delete(entry{k: spillEntryKey(startTs, key)})
	return nil
}

func (s *memSpill) DeleteTxn(startTs uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return ErrClosed
	}
	start, end := spillTxnBounds(0, startTs)
	var doomed []entry
	s.items.AscendRange(entry{k: start}, entry{k: end}, func(e entry) bool {
		doomed = append(doomed, e)
		return true
	})
	for _, e := range doomed {
		s.items.Delete(e)
	}
	return nil
}

func (s *memSpill) ForEach(fn func(startTs uint64, key, value []byte) error) error {
	s.mu.Lock()
	if s.dropped {
		s.mu.Unlock()
		return ErrClosed
	}
	view := s.items.Clone()
	s.mu.Unlock()
	var err error
	view.Ascend(func(e entry) bool {
		startTs, key, _ := decodeSpillKey(e.k)
		err = fn(startTs, key, e.v)
		return err == nil
	})
	return err
}

func (s *memSpill) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped = true
	s.items.Clear(false)
}
