// Package fsx owns the Linux file-system primitives the store needs: atomic
// file replacement, directory, tree and file-system syncing, robust
// recursive removal (unmounting and clearing immutable flags), reflinks and
// tree copies.
//
// Locking: none. Nothing here takes store locks; callers hold whatever lock
// protects the paths they pass. Syscalls live in _linux.go files, with
// _other.go stubs that return ErrNotSupported (or a portable fallback).
package fsx
