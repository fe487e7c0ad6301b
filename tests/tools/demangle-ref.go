// SPDX-License-Identifier: MIT
//
// demangle-ref: the reference the symbolizer's names are tested against. Reads one mangled
// name per line on stdin and prints it demangled as pprof's -symbolize=demangle=MODE does,
// with the demangler pprof itself uses (github.com/ianlancetaylor/demangle, from Debian's
// golang packages) and the options pprof's symbolizer passes for each mode. A name that does
// not demangle is printed as is, as pprof leaves it.
//
// Usage: demangle-ref simple|templates|full|none < names
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/ianlancetaylor/demangle"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: demangle-ref simple|templates|full|none < names")
		os.Exit(2)
	}
	var opts []demangle.Option
	switch os.Args[1] {
	case "simple":
		opts = []demangle.Option{demangle.NoParams, demangle.NoTemplateParams}
	case "templates":
		opts = []demangle.Option{demangle.NoParams}
	case "full":
		opts = []demangle.Option{demangle.NoClones}
	case "none":
		opts = nil
	default:
		fmt.Fprintln(os.Stderr, "demangle-ref: unknown mode", os.Args[1])
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		name := in.Text()
		if os.Args[1] != "none" {
			o := make([]demangle.Option, len(opts))
			copy(o, opts)
			name = demangle.Filter(name, o...)
		}
		fmt.Fprintln(out, name)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "demangle-ref:", err)
		os.Exit(1)
	}
}
