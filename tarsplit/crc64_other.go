//go:build !amd64

package tarsplit

const haveCLMUL = false

func foldCLMUL(state uint64, p []byte) (lo, hi uint64) { panic("unreachable") }
