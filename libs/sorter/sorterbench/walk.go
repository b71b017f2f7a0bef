package sorterbench

import (
	"io/fs"
	"path/filepath"
)

func walk(dir string, fn func(size int64)) error {
	return filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if info, err := d.Info(); err == nil {
			fn(info.Size())
		}
		return nil
	})
}
