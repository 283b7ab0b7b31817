package tarsplit

import "golang.org/x/sys/cpu"

var haveCLMUL = cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE2

// foldCLMUL is in crc64_amd64.s; len(p) is a multiple of 16, at least 32.
//
//go:noescape
func foldCLMUL(state uint64, p []byte) (lo, hi uint64)
