package crypt

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// LocalScheme is the reference scheme of LocalKMS: "local:NAME".
const LocalScheme = "local"

// localWrapFormat is the first byte of a key LocalKMS wrapped.
const localWrapFormat = 1

// localKeyName is what a NAME in "local:NAME" may be: it is a file name.
var localKeyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// LocalKMS keeps KEKs in a directory of key files, DIR/NAME.key, one per
// reference local:NAME (format and permissions: docs/formats/encryption.md).
// It reads the file on every call, so a rotation or a disable takes effect
// at once; callers cache data keys, so calls are rare.
type LocalKMS struct {
	dir string
}

var _ KMS = (*LocalKMS)(nil)

// NewLocalKMS serves the key files in dir.
func NewLocalKMS(dir string) (*LocalKMS, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("local key directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local key directory %s is not a directory", dir)
	}
	return &LocalKMS{dir: dir}, nil
}

// keyFile is the JSON in a key file. Versions are numbered from 1; the
// highest wraps new keys.
type keyFile struct {
	Disabled bool         `json:"disabled"`
	Versions []keyVersion `json:"versions"`
}

type keyVersion struct {
	Version uint32 `json:"version"`
	Key     string `json:"key"` // 32 bytes, hex
}

// path returns the key file of ref.
func (k *LocalKMS) path(ref string) (name, path string, err error) {
	name, err = refName(LocalScheme, ref)
	if err != nil {
		return "", "", err
	}
	if !localKeyName.MatchString(name) {
		return "", "", fmt.Errorf("%w %q: a local key name is 1-64 of A-Z a-z 0-9 . _ - and starts with a letter or digit", ErrBadRef, ref)
	}
	return name, filepath.Join(k.dir, name+".key"), nil
}

// load reads and checks ref's key file.
func (k *LocalKMS) load(ref string) (string, *keyFile, error) {
	name, path, err := k.path(ref)
	if err != nil {
		return "", nil, err
	}
	f, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("%w: %s: no key file %s", ErrKeyNotFound, ref, path)
	}
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", ref, err)
	}
	if f.Disabled {
		return "", nil, fmt.Errorf("%w: %s: key file %s says disabled", ErrKeyDisabled, ref, path)
	}
	return name, f, nil
}

// readKeyFile parses path after checking that only its owner can read it.
func readKeyFile(path string) (*keyFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %04o: it must be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f keyFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	seen := map[uint32]bool{}
	for _, v := range f.Versions {
		kb, err := hex.DecodeString(v.Key)
		if v.Version == 0 || seen[v.Version] || err != nil || len(kb) != DataKeyLen {
			return nil, fmt.Errorf("key file %s: version %d: want a unique version >= 1 and 64 hex digits", path, v.Version)
		}
		seen[v.Version] = true
	}
	if len(f.Versions) == 0 {
		return nil, fmt.Errorf("key file %s has no key versions", path)
	}
	return &f, nil
}

func (f *keyFile) newest() keyVersion {
	n := f.Versions[0]
	for _, v := range f.Versions[1:] {
		if v.Version > n.Version {
			n = v
		}
	}
	return n
}

func (f *keyFile) version(v uint32) (keyVersion, bool) {
	for _, kv := range f.Versions {
		if kv.Version == v {
			return kv, true
		}
	}
	return keyVersion{}, false
}

// localAAD binds a wrapped key to its key name and version.
func localAAD(name string, version uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte("tistream local kms v1\x00"+name+"\x00"), version)
}

func gcmOf(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// WrapKey implements KMS: format byte, version (u32), 12-byte nonce, then
// the data key sealed with AES-256-GCM under that version.
func (k *LocalKMS) WrapKey(_ context.Context, ref string, dek []byte) ([]byte, error) {
	name, f, err := k.load(ref)
	if err != nil {
		return nil, err
	}
	v := f.newest()
	kek, _ := hex.DecodeString(v.Key)
	aead, err := gcmOf(kek)
	if err != nil {
		return nil, err
	}
	out := binary.BigEndian.AppendUint32([]byte{localWrapFormat}, v.Version)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, dek, localAAD(name, v.Version)), nil
}

// UnwrapKey implements KMS with the version the wrapped key names.
func (k *LocalKMS) UnwrapKey(_ context.Context, ref string, wrapped []byte) ([]byte, error) {
	name, f, err := k.load(ref)
	if err != nil {
		return nil, err
	}
	const head = 1 + 4 + 12
	if len(wrapped) < head+16 || wrapped[0] != localWrapFormat {
		return nil, fmt.Errorf("%w: %s: a wrapped key of %d bytes is not in local format %d", ErrCorrupt, ref, len(wrapped), localWrapFormat)
	}
	ver := binary.BigEndian.Uint32(wrapped[1:5])
	v, ok := f.version(ver)
	if !ok {
		return nil, fmt.Errorf("%w: %s has no version %d", ErrKeyNotFound, ref, ver)
	}
	kek, _ := hex.DecodeString(v.Key)
	aead, err := gcmOf(kek)
	if err != nil {
		return nil, err
	}
	dek, err := aead.Open(nil, wrapped[5:head], wrapped[head:], localAAD(name, ver))
	if err != nil {
		return nil, fmt.Errorf("%w: %s version %d did not wrap this key", ErrAuth, ref, ver)
	}
	return dek, nil
}
