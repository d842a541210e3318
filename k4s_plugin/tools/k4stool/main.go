// Command k4stool drives the steps of a k4s build inside Pants sandboxes.
//
// Each subcommand is one Pants Process: it reads only its declared inputs
// (paths relative to the sandbox), writes only its declared outputs, and
// passes large trees as one deterministic tar file.
//
//	k4stool download -gomod DIR -out modules.tar
//	k4stool rewrite  -gomod DIR -modules modules.tar -out gen.tar -commands commands.json [-name PKG=NAME]... PATTERN...
//	k4stool compile  -tree gen.tar -out bb [-tags T]... [-ldflags FLAGS]
//	k4stool cpio     -manifest manifest.json -out initramfs.cpio[.gz|.xz|.zst]
//
// The go binary is taken from $GOROOT/bin/go. Errors go to stderr prefixed
// with "k4s: " and a stable code (e.g. "k4s: E_NOT_MAIN: ..."), which the
// Pants rules turn into messages that name the target and field.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// subcommands holds the steps this build of k4stool has; each file registers
// its own in init(). The download step's tool is this package built with the
// k4s_download tag: only the download step and its small dependencies, so it
// is built first and the download runs while the full k4stool is being built.
var subcommands = map[string]func(args []string) error{}

func main() {
	if len(os.Args) < 2 {
		fatalf("E_USAGE", "usage: k4stool %s [flags]", strings.Join(names(), "|"))
	}
	cmd, ok := subcommands[os.Args[1]]
	if !ok {
		fatalf("E_USAGE", "unknown subcommand %q (this k4stool has %s)", os.Args[1], strings.Join(names(), ", "))
	}
	if err := cmd(os.Args[2:]); err != nil {
		if ce, ok := err.(*codedError); ok {
			fatalf(ce.code, "%s", ce.msg)
		}
		fatalf("E_INTERNAL", "%v", err)
	}
}

func names() []string {
	var out []string
	for n := range subcommands {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// codedError is an error with a stable code that the Pants rules match on.
type codedError struct {
	code string
	msg  string
}

func (e *codedError) Error() string { return e.code + ": " + e.msg }

func errorf(code, format string, args ...any) error {
	return &codedError{code: code, msg: fmt.Sprintf(format, args...)}
}

func fatalf(code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// Sandbox paths mean nothing to the user: show paths relative to it.
	if wd, err := os.Getwd(); err == nil {
		msg = strings.ReplaceAll(msg, wd+"/", "")
	}
	fmt.Fprintf(os.Stderr, "k4s: %s: %s\n", code, msg)
	os.Exit(1)
}
