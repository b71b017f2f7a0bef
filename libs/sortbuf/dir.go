package sortbuf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// markerName is written in every directory the engine owns. Open wipes a
// directory only if it is empty or carries the marker, so a mistyped path
// (a home directory, "/data") is refused instead of erased.
const markerName = "TISTREAM_SORTBUF"

// prepareDir makes dir an empty engine directory.
func prepareDir(dir string) error {
	if dir == "" {
		return errors.New("sortbuf: empty directory path")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sortbuf: create %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sortbuf: read %s: %w", dir, err)
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, markerName)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sortbuf: refusing to wipe %s: not empty and not a sorter directory (no %s)", dir, markerName)
		} else if err != nil {
			return fmt.Errorf("sortbuf: stat marker in %s: %w", dir, err)
		}
		for _, ent := range entries {
			if ent.Name() == markerName {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, ent.Name())); err != nil {
				return fmt.Errorf("sortbuf: wipe %s: %w", dir, err)
			}
		}
	}
	marker := []byte("tistream sorter buffer: wiped on every start\n")
	if err := os.WriteFile(filepath.Join(dir, markerName), marker, 0o644); err != nil {
		return fmt.Errorf("sortbuf: write marker in %s: %w", dir, err)
	}
	return nil
}
