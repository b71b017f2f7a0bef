//go:build !linux

package offheap

import (
	"errors"
	"time"
)

// Elsewhere blocks come from the Go heap (Get and Put do not call these).
const supported = false

func mapAligned(int) ([]byte, error) { return nil, errors.New("offheap: not supported") }

func release([]byte) error { return nil }

// AdviseHuge does nothing here.
func AdviseHuge([]byte) {}

func probeFaults() (time.Duration, time.Duration, error) {
	return 0, 0, errors.New("offheap: not supported")
}
