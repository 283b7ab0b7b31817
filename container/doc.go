// Package container owns container records: containers.json,
// volatile-containers.json and their big-data bookkeeping.
package container
