package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Flags is the flag set of one k4stool subcommand. Every Cmd<Name> that takes
// flags starts the same way:
//
//	fs := cli.NewFlags("cpio")
//	out := fs.String("out", "initramfs.cpio", "output archive")
//	if err := fs.Parse(args, cli.NoArgs, "out"); err != nil {
//		return err
//	}
//
// What the flag package alone would print and exit 2 on (an unknown flag, a
// value that does not parse), a required flag left empty and a wrong number
// of arguments are E_USAGE errors, like every other k4stool error: they name
// the subcommand and the problem, then list the subcommand's flags. -h or
// -help prints the flags on stdout and is ErrHelp, on which k4stool exits 0.
type Flags struct {
	*flag.FlagSet
}

// The number of arguments after the flags that Parse accepts, besides an
// exact count.
const (
	NoArgs  = 0  // flags only
	AnyArgs = -1 // any number, e.g. command patterns after "--"
)

// ErrHelp is Parse's answer to -h or -help, after it printed the flags.
var ErrHelp = flag.ErrHelp

// NewFlags is the empty flag set of subcommand name.
func NewFlags(name string) *Flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse reports, in one coded error
	return &Flags{fs}
}

// Parse parses args. nargs is the number of arguments the subcommand takes
// after its flags (NoArgs, AnyArgs or an exact count); each flag named in
// required must be given a value that is not empty.
func (f *Flags) Parse(args []string, nargs int, required ...string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stdout, "k4stool %s flags:\n%s", f.Name(), f.Defaults())
			return ErrHelp
		}
		return f.Usagef("%v", err)
	}
	for _, name := range required {
		fl := f.Lookup(name)
		if fl == nil {
			return Errorf("E_INTERNAL", "k4stool %s: required flag -%s is not defined", f.Name(), name)
		}
		if fl.Value.String() == "" {
			return f.Usagef("-%s is required", name)
		}
	}
	switch {
	case nargs == NoArgs && f.NArg() > 0:
		return f.Usagef("unexpected argument %q (it takes flags only)", f.Arg(0))
	case nargs > 0 && f.NArg() != nargs:
		return f.Usagef("takes %d argument(s) after its flags, got %d", nargs, f.NArg())
	}
	return nil
}

// Usagef is the E_USAGE error of this subcommand: the problem, then its flags.
func (f *Flags) Usagef(format string, args ...any) error {
	return Errorf("E_USAGE", "k4stool %s: %s\nflags:\n%s", f.Name(), fmt.Sprintf(format, args...), f.Defaults())
}

// Defaults is the flag package's listing of the flags, their help and defaults.
func (f *Flags) Defaults() string {
	var b strings.Builder
	f.SetOutput(&b)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
	return b.String()
}
