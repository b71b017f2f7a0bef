package objstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Memory is a Store kept in a map, for unit tests. It follows the same
// contract as the durable stores, so tests written against it hold there.
type Memory struct {
	mu      sync.RWMutex
	objects map[string][]byte
}

var (
	_ Store       = (*Memory)(nil)
	_ PartsPutter = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{objects: make(map[string][]byte)}
}

// String implements Store.
func (m *Memory) String() string { return "mem://" }

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, data []byte) error {
	return m.put(ctx, "put", key, [][]byte{data}, false)
}

// PutIfAbsent implements Store.
func (m *Memory) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	return m.put(ctx, "put-if-absent", key, [][]byte{data}, true)
}

// PutParts implements PartsPutter.
func (m *Memory) PutParts(ctx context.Context, key string, parts [][]byte) error {
	return m.put(ctx, "put", key, parts, false)
}

// PutIfAbsentParts implements PartsPutter.
func (m *Memory) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	return m.put(ctx, "put-if-absent", key, parts, true)
}

// put stores the parts' concatenation, a copy of its own (the caller may
// reuse its buffers, as it may with a real store; a store in memory has to
// join the parts anyway), only if the key is free when ifAbsent.
func (m *Memory) put(ctx context.Context, op, key string, parts [][]byte, ifAbsent bool) error {
	if err := checkOp(ctx, op, key); err != nil {
		return err
	}
	cp := appendParts(make([]byte, 0, PartsLen(parts)), parts)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[key]; ok && ifAbsent {
		return fmt.Errorf("%s %s: %w", op, key, ErrExists)
	}
	m.objects[key] = cp
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	return m.GetRange(ctx, key, 0, -1)
}

// GetRange implements Store.
func (m *Memory) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	return m.getRange(ctx, key, off, n, nil)
}

// GetRangeInto implements RangeIntoGetter.
func (m *Memory) GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error) {
	if off < 0 {
		return nil, negativeOffsetErr(key, off)
	}
	return m.getRange(ctx, key, off, int64(len(buf)), buf)
}

// getRange copies into buf when it is not nil (it then holds n bytes).
func (m *Memory) getRange(ctx context.Context, key string, off, n int64, buf []byte) ([]byte, error) {
	if err := checkOp(ctx, "get", key); err != nil {
		return nil, err
	}
	m.mu.RLock()
	data, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	start, end, err := clipRange(key, int64(len(data)), off, n)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	// Stored slices are never modified in place (Put replaces them), so
	// copying outside the lock is safe.
	if buf == nil {
		return append([]byte{}, data[start:end]...), nil
	}
	return buf[:copy(buf, data[start:end])], nil
}

// List implements Store.
func (m *Memory) List(ctx context.Context, prefix, startAfter string, limit int) ([]ObjectInfo, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("list %s prefix %q: %w", m, prefix, err)
	}
	limit = pageLimit(limit)
	m.mu.RLock()
	var keys []string
	for k := range m.objects {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	// Go compares strings byte-wise, which is the order List promises.
	slices.Sort(keys)
	more := len(keys) > limit
	if more {
		keys = keys[:limit]
	}
	out := make([]ObjectInfo, 0, len(keys))
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range keys {
		data, ok := m.objects[k]
		if !ok {
			continue // deleted since the scan above
		}
		out = append(out, ObjectInfo{Key: k, Size: int64(len(data))})
	}
	return out, more, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := checkOp(ctx, "delete", key); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
	return nil
}

// checkOp is the common preamble of every keyed operation: a valid key and a
// live context.
func checkOp(ctx context.Context, op, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}
