// Command packaging builds sandbox0d's Debian package and a tarball with the
// same files, reproducibly, from this checkout:
//
//	cd packaging && go run . -out ../dist
//
// writes dist/sandbox0d_VERSION_ARCH.deb and dist/sandbox0d_VERSION_linux_ARCH.tar.gz.
// Files carry the commit's time (SOURCE_DATE_EPOCH if set, else the time
// of the checked-out commit), the binary is built with -trimpath and no
// VCS stamp, and man pages are gzipped without a name or time, so the same
// commit and Go version give byte-identical packages. The only network it
// uses is the Go module proxy, for this module's own dependencies (nfpm)
// the first time.
//
// It is a module of its own so that the daemon's go.mod does not carry
// nfpm's dependencies. docs/install.md "Packages" says what the package
// holds and what its maintainer scripts do; internal/packagetest and
// internal/systemdtest build and install it.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

func main() {
	var o options
	flag.StringVar(&o.repo, "repo", "..", "the sandbox0d checkout to package")
	flag.StringVar(&o.out, "out", "dist", "directory to write the .deb and the tarball into")
	flag.StringVar(&o.version, "version", "", "the package version, stamped into the binary (sandbox0d version); "+
		"default 0.0.0~gitYYYYMMDD.COMMIT from the checked-out commit")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "the Go architecture to build for (amd64, arm64, ...)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "packaging: unexpected arguments %q (see -h)\n", flag.Args())
		os.Exit(2)
	}
	built, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	for _, f := range built {
		fmt.Println(f)
	}
}
