// Package config reads storage.conf (the containers/storage configuration
// file) and the STORAGE_DRIVER/STORAGE_OPTS environment into store.Options.
package config
