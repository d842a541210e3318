// Command k4stool drives the steps of a k4s build inside Pants sandboxes.
//
// Each subcommand is one Pants Process: it reads only its declared inputs
// (paths relative to the sandbox), writes only its declared outputs, and
// passes large trees as one deterministic tar file.
//
//	k4stool download -gomod DIR -out modules.tar [-dlcache DIR] [-tag T]... [-patch FILE]... -- PATTERN...
//	k4stool rewrite-plan    -gomod DIR -modules modules.tar -commands commands.json -plan plan.json -deps deps.txt -bbmain bbmain.tar -srcdir DIR [-name PKG=NAME]... [-tag T]... -- PATTERN...
//	k4stool rewrite-deps    -gomod DIR -modules modules.tar -list deps.txt -out deps.tar [-tag T]...
//	k4stool rewrite-command -deps deps.tar -src NAME.tar -pkg PATH -name NAME -kind KIND -out out.tar [-tag T]...
//	k4stool compile  -tree deps.tar -tree bbmain.tar -tree out.tar... -out bb [-tag T]... [-ldflags FLAGS]
//	k4stool cpio     -manifest manifest.json -out initramfs.cpio[.gz|.xz|.zst]
//	k4stool oci      -manifest image.json -out image.tar
//	k4stool tidy     -gomod DIR -out DIR [-dlcache DIR] [-tag T]... [-patch FILE]... -- PATTERN...
//	k4stool sizes    (size report of a bb; see sizes.go)
//	k4stool vm       (boot an initramfs in QEMU; see vm.go)
//
// User values (command patterns) always follow "--", so none is read as a
// flag; paths given to or found by k4stool must stay inside its working
// directory (the sandbox).
//
// The go binary is taken from $GOROOT/bin/go. Errors go to stderr prefixed
// with "k4s: " and a stable code (e.g. "k4s: E_NOT_MAIN: ..."), which the
// Pants rules turn into messages that name the target and field.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// Command patterns are Go import paths (elements of letters, digits and
// -._~+, globs in the elements), optionally with one leading '-' to exclude.
// The Pants rules check this too; k4stool checks again so that no value can
// turn into a flag or a path outside the sandbox (defence in depth).
var patternElem = regexp.MustCompile(`^[A-Za-z0-9._~+*?\[\]-]+$`)

func checkPatterns(patterns []string) error {
	for _, p := range patterns {
		bare := strings.TrimPrefix(p, "-")
		ok := bare != "" && !strings.HasPrefix(bare, "-") && !strings.HasPrefix(bare, "/") && !strings.HasSuffix(bare, "/")
		for _, e := range strings.Split(bare, "/") {
			if !ok {
				break
			}
			ok = patternElem.MatchString(e) && !strings.HasPrefix(e, ".") && !strings.HasSuffix(e, ".")
		}
		if !ok {
			return errorf("E_BAD_PATTERN", "%q is not a Go import path, glob or exclusion", p)
		}
	}
	return nil
}

// within reports whether path p (absolute or relative to the working
// directory) lies inside dir, after cleaning; it resolves no symlinks.
func within(dir, p string) bool {
	rel, err := filepath.Rel(mustAbs(dir), mustAbs(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
