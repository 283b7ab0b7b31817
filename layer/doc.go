// Package layer owns layer records: their JSON form (layers.json,
// volatile-layers.json, mountpoints.json), indexes and name rules.
package layer
