package crypt

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CreateLocalKey makes the key file of local:name in dir with one random
// version, mode 0600 (dir is made 0700 if missing). It fails if the key
// exists: a key is never replaced, only rotated.
func CreateLocalKey(dir, name string) (ref string, err error) {
	ref = LocalScheme + ":" + name
	k := &LocalKMS{dir: dir}
	_, path, err := k.path(ref)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("key file %s exists", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	f := &keyFile{}
	if err := f.addVersion(); err != nil {
		return "", err
	}
	return ref, writeKeyFile(path, f)
}

// RotateLocalKey adds a version to local:name; new wraps use it, keys
// wrapped by older versions stay readable. It returns the new version.
func RotateLocalKey(dir, name string) (uint32, error) {
	var v uint32
	err := editLocalKey(dir, name, func(f *keyFile) error {
		if err := f.addVersion(); err != nil {
			return err
		}
		v = f.newest().Version
		return nil
	})
	return v, err
}

// SetLocalKeyDisabled disables (revokes) or re-enables local:name.
func SetLocalKeyDisabled(dir, name string, disabled bool) error {
	return editLocalKey(dir, name, func(f *keyFile) error {
		f.Disabled = disabled
		return nil
	})
}

func editLocalKey(dir, name string, edit func(*keyFile) error) error {
	_, path, err := (&LocalKMS{dir: dir}).path(LocalScheme + ":" + name)
	if err != nil {
		return err
	}
	f, err := readKeyFile(path)
	if err != nil {
		return err
	}
	if err := edit(f); err != nil {
		return err
	}
	return writeKeyFile(path, f)
}

func (f *keyFile) addVersion() error {
	key := make([]byte, DataKeyLen)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	var next uint32 = 1
	if len(f.Versions) > 0 {
		next = f.newest().Version + 1
	}
	f.Versions = append(f.Versions, keyVersion{Version: next, Key: hex.EncodeToString(key)})
	return nil
}

// writeKeyFile replaces path atomically (a temporary file renamed over it).
func writeKeyFile(path string, f *keyFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// LocalKeyInfo describes one key file of a key directory, never its keys.
type LocalKeyInfo struct {
	Name     string // NAME of local:NAME
	Ref      string // local:NAME
	Disabled bool
	Versions int    // how many versions the file holds
	Newest   uint32 // the version new wraps use
	Err      error  // the file could not be read or is not a valid key file
}

// ListLocalKeys describes the key files (*.key) in dir, by name. A file that
// does not parse, or whose mode lets others read it, is listed with Err set.
func ListLocalKeys(dir string) ([]LocalKeyInfo, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.key"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("local key directory: %w", err)
	}
	out := make([]LocalKeyInfo, 0, len(paths))
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".key")
		if !localKeyName.MatchString(name) {
			continue // not a key of this directory's naming
		}
		info := LocalKeyInfo{Name: name, Ref: LocalScheme + ":" + name}
		if f, err := readKeyFile(p); err != nil {
			info.Err = err
		} else {
			info.Disabled, info.Versions, info.Newest = f.Disabled, len(f.Versions), f.newest().Version
		}
		out = append(out, info)
	}
	return out, nil
}

// DestroyLocalKey deletes the key file of ref (local:NAME) from dir and
// syncs the directory: every object sealed under any version of the key is
// unreadable from then on (crypto-shredding; copies of the file elsewhere —
// other hosts' key directories, backups — are not touched). It returns
// false, and no error, when the file is already gone, so a resumed
// offboarding calls it again safely.
func DestroyLocalKey(dir, ref string) (destroyed bool, err error) {
	_, path, err := (&LocalKMS{dir: dir}).path(ref)
	if err != nil {
		return false, err
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return true, fmt.Errorf("sync key directory %s: %w", dir, err)
		}
	}
	return true, nil
}
