// Package archive owns layer tar streams: compression detection, the
// single-pass unpack (digests, sizes, tar-split, UID/GID sets, whiteouts,
// confinement of hostile paths) and generating diffs from directories.
//
// # Unpack pipeline
//
// The blob is read once, by a prefetcher goroutine that also counts and
// hashes it (compressed digest) into a small ring of 1 MiB buffers; the
// compression is detected by peeking with ReadFull semantics. A compressed
// layer is decompressed by a second prefetcher goroutine, whose buffers a
// third goroutine hashes in place (uncompressed digest; plain tars have
// one digest), so inflating and hashing run beside extraction. One tar
// reader (tar-split's fork of archive/tar, with raw accounting when
// tar-split is wanted) drives extraction; the extraction loop computes the
// CRC-64 of payloads as they pass and hands raw header bytes in batches to
// a recorder goroutine that writes tar-split's JSON through gzip, exactly
// as tar-split's disassembler and packer would. A closer goroutine sets
// the times of written files and closes them. After the last entry the
// rest of the stream (end-of-archive blocks and padding) is drained
// through the recorder and the hashers.
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
