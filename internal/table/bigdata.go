package table

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrInvalidBigDataName rejects the empty big-data key.
var ErrInvalidBigDataName = errors.New("not a valid name for a big data item")

// BigDataFileName maps a big-data key to its file name: keys made only of
// [a-z0-9.] are used as they are, anything else becomes "=" followed by
// the standard (padded) base64 of the key. This is containers/storage's
// encoding, shared by layers, images and containers.
func BigDataFileName(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("can't set empty name for big data item: %w", ErrInvalidBigDataName)
	}
	plain := strings.IndexFunc(key, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.')
	}) < 0
	if plain {
		return key, nil
	}
	return "=" + base64.StdEncoding.EncodeToString([]byte(key)), nil
}

// BigDataPath returns the file of one big-data key in a record's
// directory dir.
func BigDataPath(dir, key string) (string, error) {
	name, err := BigDataFileName(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// NewID returns 32 random bytes as 64 lowercase hex digits, retrying when
// the first 12 characters are all digits or taken(id) reports a collision.
func NewID(taken func(string) bool) (string, error) {
	for range 1000 {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("generating ID: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if strings.IndexFunc(id[:12], func(c rune) bool { return c < '0' || c > '9' }) < 0 {
			continue
		}
		if taken != nil && taken(id) {
			continue
		}
		return id, nil
	}
	return "", errors.New("generating ID: too many collisions")
}
