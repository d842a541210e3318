package cli

import (
	"errors"
	"strings"
	"testing"
)

// A subcommand's flag set as the Cmd<Name> entry points make theirs.
func testFlags() (*Flags, *string, *int, *MultiFlag) {
	fs := NewFlags("pack")
	out := fs.String("out", "out.tar", "output tar")
	top := fs.Int("top", 20, "rows per table")
	var tags MultiFlag
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	return fs, out, top, &tags
}

func TestFlagsParse(t *testing.T) {
	fs, out, top, tags := testFlags()
	if err := fs.Parse([]string{"-out", "x.tar", "-top=3", "-tag", "a", "-tag", "b", "--", "-p/q"}, AnyArgs, "out"); err != nil {
		t.Fatal(err)
	}
	if *out != "x.tar" || *top != 3 || strings.Join(*tags, ",") != "a,b" {
		t.Errorf("parsed -out %q -top %d -tag %v", *out, *top, *tags)
	}
	// After "--" a value that looks like a flag is an argument.
	if fs.NArg() != 1 || fs.Arg(0) != "-p/q" {
		t.Errorf("arguments %q", fs.Args())
	}
}

func TestFlagsErrorsAreUsageErrorsThatListTheFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		nargs    int
		required []string
		want     string
	}{
		{[]string{"-bogus"}, NoArgs, nil, "flag provided but not defined: -bogus"},
		{[]string{"-top", "many"}, NoArgs, nil, `invalid value "many" for flag -top`},
		{[]string{"-out"}, NoArgs, nil, "flag needs an argument: -out"},
		{[]string{"-out", ""}, NoArgs, []string{"out"}, "-out is required"},
		{[]string{"stray"}, NoArgs, nil, `unexpected argument "stray" (it takes flags only)`},
		{[]string{"-out", "x", "stray"}, NoArgs, nil, `unexpected argument "stray"`},
		// The flag package stops at the first argument: a flag after it is an argument.
		{[]string{"a", "-top", "3"}, 1, nil, "takes 1 argument(s) after its flags, got 3"},
		{nil, 1, nil, "takes 1 argument(s) after its flags, got 0"},
	} {
		fs, _, _, _ := testFlags()
		err := fs.Parse(tc.args, tc.nargs, tc.required...)
		if Code(err) != "E_USAGE" {
			t.Errorf("Parse(%q) = %v, want an E_USAGE error", tc.args, err)
			continue
		}
		msg := err.Error()
		for _, part := range []string{"k4stool pack: " + tc.want, "\nflags:\n", "-out string", "output tar (default \"out.tar\")", "-tag value"} {
			if !strings.Contains(msg, part) {
				t.Errorf("Parse(%q): %q is not in\n%s", tc.args, part, msg)
			}
		}
	}
}

func TestFlagsRequiredAcceptsAValue(t *testing.T) {
	fs, _, _, _ := testFlags()
	if err := fs.Parse([]string{"-out", "y.tar", "arg"}, 1, "out"); err != nil {
		t.Fatal(err)
	}
	// A default that is not empty meets `required` too: it is a value.
	fs, _, _, _ = testFlags()
	if err := fs.Parse(nil, NoArgs, "out"); err != nil {
		t.Fatal(err)
	}
}

func TestFlagsRequiredMustBeDefined(t *testing.T) {
	fs, _, _, _ := testFlags()
	if err := fs.Parse(nil, NoArgs, "outt"); Code(err) != "E_INTERNAL" || !strings.Contains(err.Error(), "-outt is not defined") {
		t.Errorf("a misspelt required flag: %v, want E_INTERNAL naming it", err)
	}
}

func TestFlagsHelp(t *testing.T) {
	for _, h := range []string{"-h", "-help", "--help"} {
		fs, _, _, _ := testFlags()
		if err := fs.Parse([]string{h}, NoArgs, "out"); !errors.Is(err, ErrHelp) {
			t.Errorf("Parse(%s) = %v, want ErrHelp", h, err)
		}
	}
}
