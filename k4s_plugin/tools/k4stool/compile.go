//go:build !k4s_download

package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

func init() {
	subcommands["compile"] = compile
	subcommands["linkexec"] = linkexec
}

// linkexec runs a Go tool (go build -toolexec): the linker with the flags of
// the -ldflags-file (checked by compile) before its own, any other tool as is.
func linkexec(args []string) error {
	if len(args) < 2 {
		return errorf("E_USAGE", "usage: k4stool linkexec FLAGS-FILE TOOL ARGS...")
	}
	tool, toolArgs := args[1], args[2:]
	if strings.TrimSuffix(filepath.Base(tool), ".exe") == "link" && !(len(toolArgs) == 1 && strings.HasPrefix(toolArgs[0], "-V")) {
		data, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		toolArgs = append(strings.Fields(string(data)), toolArgs...)
	}
	cmd := exec.Command(tool, toolArgs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		return err
	}
	return nil
}

// compile builds the generated busybox tree (the rewrite's tars, unpacked in
// order into one GOPATH: dependencies, bb's main package, each command) into
// one static binary:
// GOPATH mode (gobusybox's tree is GOPATH-style), CGO_ENABLED=0, -trimpath,
// an empty build id, GOOS/GOARCH from the environment.
func compile(args []string) error {
	fs := flag.NewFlagSet("compile", flag.ExitOnError)
	out := fs.String("out", "bb", "output binary")
	ldflags := fs.String("ldflags", "-s -w", "linker flags (-buildid= is always added)")
	ldflagsFile := fs.String("ldflags-file", "", "a file of linker flags (as -ldflags, blank- or newline-separated), for lists too long for one argument")
	var tags, trees multiFlag
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	fs.Var(&trees, "tree", "a tar of the generated tree, from `k4stool rewrite-deps`, `rewrite-plan` (bb's main) or `rewrite-command` (repeatable)")
	fs.Parse(args)
	if len(trees) == 0 {
		return errorf("E_USAGE", "no -tree given")
	}
	work := mustAbs(".")
	linkFlags := strings.TrimSpace(*ldflags + " -buildid=")
	if *ldflagsFile != "" {
		// A long list (thousands of -X) does not fit one argument (Linux's 128 KiB per
		// argument): the linker reads it from a response file (@file, one argument per
		// line), and -trimpath keeps its path out of the binary's build info.
		if !within(work, *ldflagsFile) {
			return errorf("E_BAD_PATH", "-ldflags-file must be inside the working directory")
		}
		data, err := os.ReadFile(*ldflagsFile)
		if err != nil {
			return err
		}
		*ldflags = string(data)
		linkFlags = "-buildid="
	}
	if err := checkLdflags(*ldflags); err != nil {
		return err
	}

	for _, p := range append([]string{*out}, trees...) {
		if !within(work, p) {
			return errorf("E_BAD_PATH", "-tree and -out must be inside the working directory")
		}
	}
	if err := os.MkdirAll(filepath.Dir(mustAbs(*out)), 0o755); err != nil {
		return err
	}
	gopath := filepath.Join(work, "gopath")
	for _, t := range trees {
		if err := unpackTree(t, gopath); err != nil {
			return err
		}
	}
	env, err := goEnv(work,
		"GOPATH="+gopath,
		"GO111MODULE=off",
		"GOFLAGS="+goFlagsWithout("-mod=", "-modcacherw"),
	)
	if err != nil {
		return err
	}
	buildArgs := []string{"build", "-trimpath", "-o", mustAbs(*out), "-ldflags", linkFlags}
	if len(tags) > 0 {
		buildArgs = append(buildArgs, "-tags", strings.Join(tags, ","))
	}
	if *ldflagsFile != "" {
		// cmd/go refuses `@file` in -ldflags, and one -ldflags argument is limited
		// to 128 KiB: `k4stool linkexec` (as -toolexec) hands the linker the flags
		// from the file; cmd/go passes a long link command line in its own
		// response file.
		self, err := os.Executable()
		if err != nil {
			return err
		}
		// cmd/go splits -toolexec on blanks (and quotes): the paths must have none.
		if strings.ContainsAny(self+mustAbs(*ldflagsFile), " \t\n'\"\\") {
			return errorf("E_BAD_PATH", "the paths %q and %q have blanks or quotes", self, mustAbs(*ldflagsFile))
		}
		buildArgs = append(buildArgs, "-toolexec", self+" linkexec "+mustAbs(*ldflagsFile))
	}
	buildArgs = append(buildArgs, ".")
	if _, _, err := run(filepath.Join(gopath, "src", bbMainPkg), env, goBinary(), buildArgs...); err != nil {
		return errorf("E_COMPILE", "%v", err)
	}
	return nil
}

// ldflagX is the one linker flag with an argument that k4s passes through.
var ldflagX = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+\.[A-Za-z_][A-Za-z0-9_]*=[^\s'"\\` + "`" + `]*$`)

// checkLdflags allows only -s, -w and -X importpath.name=value: other linker
// flags (-o, -tmpdir, -cpuprofile, ...) write files where the user says.
func checkLdflags(flags string) error {
	words := strings.Fields(flags)
	for i := 0; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-s" || w == "-w":
		case w == "-X" && i+1 < len(words) && ldflagX.MatchString(words[i+1]):
			i++
		default:
			return errorf("E_LDFLAGS", "linker flag %q is not allowed (only -s, -w and -X importpath.name=value)", w)
		}
	}
	return nil
}
