// Package image owns image records: images.json, the digest list, name
// history and big-data bookkeeping.
package image
