//go:build ignore

// hashfloor is the benchmark's hashing floor: it computes, with Go's
// standard library only, the SHA-256 digests a store must compute while
// importing a layer, each file in its own goroutine as the store's
// background hashers do, and prints the wall time.
//
//	plain layer:  hashfloor layer.tar                 (diff ID = blob digest)
//	zstd layer:   hashfloor layer.tar.zst layer.tar   (blob digest + diff ID)
//
// Build: go build -o bin/hashfloor bench/hashfloor.go
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hashfloor FILE...")
		os.Exit(2)
	}
	start := time.Now()
	sums := make([]string, len(os.Args)-1)
	errs := make([]error, len(sums))
	var wg sync.WaitGroup
	for i, p := range os.Args[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(p)
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			h := sha256.New()
			if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
				errs[i] = err
				return
			}
			sums[i] = hex.EncodeToString(h.Sum(nil))
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, p := range os.Args[1:] {
		if errs[i] != nil {
			fmt.Fprintf(os.Stderr, "hashfloor: %s: %v\n", p, errs[i])
			os.Exit(1)
		}
		fmt.Printf("sha256:%s  %s\n", sums[i], p)
	}
	fmt.Printf("elapsed %.3f s\n", elapsed.Seconds())
}
