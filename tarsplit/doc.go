// Package tarsplit owns per-layer tar-split metadata (<id>.tar-split.gz):
// writing it while a tar streams through, reading it, and reassembling the
// bit-identical original tar.
package tarsplit
