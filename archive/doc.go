// Package archive owns layer tar streams: compression detection, the
// single-pass unpack (digests, sizes, tar-split, UID/GID sets, whiteouts,
// confinement of hostile paths) and generating diffs from directories.
//
// # Unpack pipeline
//
// The blob is read once. A tee feeds the raw bytes to a SHA-256 hasher
// running in its own goroutine (compressed digest), the compression is
// detected by peeking with ReadFull semantics, and the decompressed stream
// is teed to a second hasher (uncompressed digest; skipped for plain tars,
// whose two digests are the same). One tar reader (tar-split's fork of
// archive/tar, with raw accounting when tar-split is wanted) drives
// extraction; the raw header bytes and file payloads are handed in batches
// to a recorder goroutine that computes the CRC-64 and writes the tar-split
// JSON through gzip, exactly as tar-split's disassembler would. After the
// last entry the rest of the stream (end-of-archive blocks and padding) is
// drained through the recorder and the hashers.
//
// # Confinement
//
// Every path is first cleaned with chroot semantics ("../x" and "/x" are
// "x"). The directory holding an entry is then opened with openat2 and
// RESOLVE_IN_ROOT on a directory fd of the destination, so ".." and
// symlinks (absolute or relative) resolve inside it, and the entry is made
// with a *at call on its last component that never follows a symlink.
// Hard-link targets are resolved the same way. Symlink targets are stored
// verbatim (they resolve inside the container).
package archive
