package config

import "errors"

// ErrMalformed wraps every error about a configuration file that cannot be parsed.
var ErrMalformed = errors.New("malformed storage configuration")
