// Command k4stool drives the steps of a k4s build inside Pants sandboxes.
//
// Each subcommand is one Pants Process: it reads only its declared inputs
// (paths relative to the sandbox), writes only its declared outputs, and
// passes large trees as one deterministic tar file. This package only
// dispatches: each subcommand is a `Cmd<Name>(args []string) error` of an
// internal package (the table in subcommands and its build-tagged parts),
// and `k4stool` alone prints them all with their flags. Each Cmd<Name> parses
// its flags with cli.Flags, so a bad flag, a missing one or a stray argument
// is an E_USAGE error listing that subcommand's flags (`k4stool <name> -h`
// prints them).
//
// User values (command patterns) always follow "--", so none is read as a
// flag; paths given to or found by k4stool must stay inside its working
// directory (the sandbox).
//
// The go binary is taken from $GOROOT/bin/go. Errors go to stderr prefixed
// with "k4s: " and a stable code (e.g. "k4s: E_NOT_MAIN: ..."), which the
// Pants rules turn into messages that name the target and field.
//
// Packages (internal/, each with its tests):
//
//	cli       coded errors, repeatable flags, sandbox path and pattern checks, atomic writes
//	gotool    the go command's environment in a sandbox, its errors as codes
//	archive   tar trees, the newc cpio and the OCI image layout
//	download  module download (go.sum-verified, patches applied) and tidy
//	rewrite   gobusybox's rewrite: plan, dependencies, one command at a time
//	compile   go build of the rewritten tree
//	gocache   GOCACHEPROG: Go's build cache on disk and over REAPI (k4s_gocache tag)
//	contract  the cluster identity's file names under etc/k4s/identity (shared with k4s-node)
//	identity  the cluster CA, admin credentials, join tokens, machine configs
//	vm        QEMU for `pants run`: disks, identity, snapshots (k4s_vm tag)
//	kernel    the pinned Debian kernel: index and module closure (k4s_kernel tag)
//	sizes     where a bb's bytes go
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/download"
)

// subcommand is one step: its entry point and its synopsis for the usage.
type subcommand struct {
	run      func(args []string) error
	synopsis string
}

// subcommands holds the steps this build of k4stool has: the download step in
// every build, the others added by steps.go (all builds but the k4s_download
// one), kernel_steps.go (the k4s_kernel tag), vm_steps.go (the k4s_vm tag:
// `pants run`'s QEMU driver, built as k4stool-vm) and gocache_step.go (the
// k4s_gocache tag: the shared build cache's GOCACHEPROG, built as
// k4stool-gocache with k4s_download,k4s_gocache). The download step's tool is
// this package built with the k4s_download tag: only the download step and its
// small dependencies, so it is built first and the download runs while the
// full k4stool is being built.
var subcommands = map[string]subcommand{
	"download": {download.CmdDownload, "-gomod DIR -out modules.tar [-dlcache DIR] [-tag T]... [-patch FILE]... [-local-module PATH@VERSION]... -- PATTERN..."},
	"imports":  {download.CmdImports, "-gomod DIR -out imports.json [-tag T]... -- PATTERN... (the third-party packages first-party commands import, for the download)"},
}

func main() {
	if len(os.Args) < 2 {
		cli.Fatalf("E_USAGE", "usage:\n%s", usage())
	}
	cmd, ok := subcommands[os.Args[1]]
	if !ok {
		cli.Fatalf("E_USAGE", "unknown subcommand %q (this k4stool has %s)", os.Args[1], strings.Join(names(), ", "))
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			return // the subcommand's flags, asked for with -h
		}
		if ce, ok := err.(*cli.CodedError); ok {
			cli.Fatalf(ce.Code, "%s", ce.Msg)
		}
		cli.Fatalf("E_INTERNAL", "%v", err)
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

// usage is every subcommand of this build with its synopsis.
func usage() string {
	var b strings.Builder
	for _, n := range names() {
		fmt.Fprintf(&b, "  k4stool %-15s %s\n", n, subcommands[n].synopsis)
	}
	return b.String()
}
