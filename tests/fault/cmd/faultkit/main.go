// Command faultkit is the helper of the fault-injection suites
// (tests/fault*.bats): it generates layer tarballs and hostile tar
// corpora, runs the kill storm, checks a store's consistency against the
// objects a test saw acknowledged, and cuts power on an ext4 file system.
//
//	faultkit gentars DIR              storm layers + DIR/digests
//	faultkit hostile DIR              malicious tars + DIR/MANIFEST
//	faultkit bomb SIZE                gzip'd tar with one SIZE-byte zero file, to stdout
//	faultkit storm [flags]            kill storm, then verify
//	faultkit verify [flags]           verify a store (acks from --acks FILE)
//	faultkit ext4-shutdown DIR        EXT4_IOC_SHUTDOWN with NOLOGFLUSH
//
// verify and storm print one INCONSISTENT line per problem and exit 1.
//
// It uses only the standard library and talks to the store through the
// CLI under test and its JSON files, so it checks stowage and the
// reference the same way.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: faultkit gentars|hostile|bomb|storm|verify|ext4-shutdown ...")
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "gentars":
		err = cmdGenTars(args)
	case "hostile":
		err = cmdHostile(args)
	case "bomb":
		err = cmdBomb(args)
	case "storm":
		err = cmdStorm(args)
	case "verify":
		err = cmdVerify(args)
	case "ext4-shutdown":
		err = cmdExt4Shutdown(args)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultkit:", err)
		os.Exit(1)
	}
}
