// Package deps owns the rule for which stowage packages may import which;
// its test enforces the layering with `go list`.
package deps
