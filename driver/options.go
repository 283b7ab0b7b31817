package driver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// SplitOption splits a "key=value" driver option (prefix already
// stripped) into its key, lower-cased, and value, both trimmed. An option
// without "=" is an error "unable to parse key/value option: <o>", the
// reference's message.
func SplitOption(o string) (key, val string, err error) {
	key, val, ok := strings.Cut(o, "=")
	if !ok {
		return "", "", fmt.Errorf("unable to parse key/value option: %s", o)
	}
	return strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val), nil
}

// ListSubdirs lists, directory by directory in order, the names of the
// subdirectories of dirs for which skip (nil: none) is false. A missing
// directory lists nothing; any other read error is returned bare.
func ListSubdirs(dirs []string, skip func(name string) bool) ([]string, error) {
	var names []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() && (skip == nil || !skip(e.Name())) {
				names = append(names, e.Name())
			}
		}
	}
	return names, nil
}
