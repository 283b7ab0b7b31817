// Package archive owns layer tar streams: compression detection, the
// single-pass unpack (digests, sizes, tar-split, UID/GID sets, whiteouts,
// confinement of hostile paths) and generating diffs from directories.
package archive
