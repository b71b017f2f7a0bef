package sortbuf

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleSpill is a range's spill namespace: uid 0x02 start_ts key. Spilling
// is the exception (transactions too large for the matcher's budget), so
// each call is its own Pebble write; DeleteTxn is one range tombstone.
type pebbleSpill struct {
	b   *pebbleBuffer
	key []byte
}

var _ SpillStore = (*pebbleSpill)(nil)

func (s *pebbleSpill) Put(startTs uint64, key, value []byte) error {
	if len(key)+len(value) > MaxRowBytes {
		return fmt.Errorf("%w: spilled prewrite of %d bytes", errInvalidRow, len(key)+len(value))
	}
	if err := s.b.enter(); err != nil {
		return err
	}
	defer s.b.e.release()
	s.key = appendSpillKey(s.key[:0], s.b.uid, startTs, key)
	if err := s.b.s.db.Set(s.key, value, pebble.NoSync); err != nil {
		return fmt.Errorf("sortbuf: spill put range %d: %w", s.b.uid, err)
	}
	return nil
}

func (s *pebbleSpill) Get(startTs uint64, key []byte) ([]byte, bool, error) {
	if err := s.b.enter(); err != nil {
		return nil, false, err
	}
	defer s.b.e.release()
	s.key = appendSpillKey(s.key[:0], s.b.uid, startTs, key)
	v := []byte{}
	ok, err := get(s.b.s.db, s.key, &v)
	if err != nil || !ok {
		return nil, false, err
	}
	return v, true, nil
}

func (s *pebbleSpill) Delete(startTs uint64, key []byte) error {
	if err := s.b.enter(); err != nil {
		return err
	}
	defer s.b.e.release()
	s.key = appendSpillKey(s.key[:0], s.b.uid, startTs, key)
	if err := s.b.s.db.Delete(s.key, pebble.NoSync); err != nil {
		return fmt.Errorf("sortbuf: spill delete range %d: %w", s.b.uid, err)
	}
	return nil
}

func (s *pebbleSpill) DeleteTxn(startTs uint64) error {
	if err := s.b.enter(); err != nil {
		return err
	}
	defer s.b.e.release()
	start, end := spillTxnBounds(s.b.uid, startTs)
	if err := s.b.s.db.DeleteRange(start, end, pebble.NoSync); err != nil {
		return fmt.Errorf("sortbuf: spill delete txn range %d: %w", s.b.uid, err)
	}
	return nil
}

func (s *pebbleSpill) ForEach(fn func(startTs uint64, key, value []byte) error) error {
	if err := s.b.enter(); err != nil {
		return err
	}
	defer s.b.e.release()
	lo := appendPrefix(nil, s.b.uid, kindSpill)
	hi := appendPrefix(nil, s.b.uid, kindSpill+1)
	it, err := s.b.s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("sortbuf: spill scan range %d: %w", s.b.uid, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		startTs, key, kok := decodeSpillKey(it.Key())
		if !kok {
			err = fmt.Errorf("%w: spill key %x", errCorrupt, it.Key())
			break
		}
		var v []byte
		if v, err = it.ValueAndErr(); err != nil {
			break
		}
		if err = fn(startTs, key, v); err != nil {
			return errors.Join(err, it.Close())
		}
	}
	if err == nil {
		err = it.Error()
	}
	if cerr := it.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sortbuf: spill scan range %d: %w", s.b.uid, err)
	}
	return nil
}
