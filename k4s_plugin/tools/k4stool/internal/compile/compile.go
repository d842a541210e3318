//go:build !k4s_download

package compile

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"k4s.dev/tools/k4stool/internal/archive"
	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"
	"k4s.dev/tools/k4stool/internal/rewrite"
)

// CmdLinkExec runs a Go tool (go build -toolexec): the linker with the flags of
// the -ldflags-file (checked by compile) before its own, any other tool as is.
func CmdLinkExec(args []string) error {
	if len(args) < 2 {
		return cli.Errorf("E_USAGE", "usage: k4stool linkexec FLAGS-FILE TOOL ARGS...")
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

// CmdCompile builds the generated busybox tree (the rewrite's tars, unpacked in
// order into one GOPATH: dependencies, bb's main package, each command) into
// one static binary:
// GOPATH mode (gobusybox's tree is GOPATH-style), CGO_ENABLED=0, -trimpath,
// an empty build id, GOOS/GOARCH from the environment.
func CmdCompile(args []string) error {
	fs := cli.NewFlags("compile")
	out := fs.String("out", "bb", "output binary")
	ldflags := fs.String("ldflags", "-s -w", "linker flags (-buildid= is always added)")
	ldflagsFile := fs.String("ldflags-file", "", "a file of linker flags (as -ldflags, blank- or newline-separated), for lists too long for one argument")
	var tags, trees cli.MultiFlag
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	fs.Var(&trees, "tree", "a tar of the generated tree, from `k4stool rewrite-deps`, `rewrite-plan` (bb's main) or `rewrite-commands` (repeatable)")
	if err := fs.Parse(args, cli.NoArgs); err != nil {
		return err
	}
	if len(trees) == 0 {
		return cli.Errorf("E_USAGE", "no -tree given")
	}
	work := cli.MustAbs(".")
	linkFlags := strings.TrimSpace(*ldflags + " -buildid=")
	if *ldflagsFile != "" {
		// A long list (thousands of -X) does not fit one argument (Linux's 128 KiB per
		// argument): the linker reads it from a response file (@file, one argument per
		// line), and -trimpath keeps its path out of the binary's build info.
		if !cli.Within(work, *ldflagsFile) {
			return cli.Errorf("E_BAD_PATH", "-ldflags-file must be inside the working directory")
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
		if !cli.Within(work, p) {
			return cli.Errorf("E_BAD_PATH", "-tree and -out must be inside the working directory")
		}
	}
	if err := os.MkdirAll(filepath.Dir(cli.MustAbs(*out)), 0o755); err != nil {
		return err
	}
	gopath := filepath.Join(work, "gopath")
	for _, t := range trees {
		if err := archive.UnpackTree(t, gopath); err != nil {
			return err
		}
	}
	env, err := gotool.Env(work,
		"GOPATH="+gopath,
		"GO111MODULE=off",
		"GOFLAGS="+gotool.FlagsWithout("-mod=", "-modcacherw"),
	)
	if err != nil {
		return err
	}
	buildArgs := []string{"build", "-trimpath", "-o", cli.MustAbs(*out), "-ldflags", linkFlags}
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
		if strings.ContainsAny(self+cli.MustAbs(*ldflagsFile), " \t\n'\"\\") {
			return cli.Errorf("E_BAD_PATH", "the paths %q and %q have blanks or quotes", self, cli.MustAbs(*ldflagsFile))
		}
		buildArgs = append(buildArgs, "-toolexec", self+" linkexec "+cli.MustAbs(*ldflagsFile))
	}
	buildArgs = append(buildArgs, ".")
	if _, _, err := cli.Run(filepath.Join(gopath, "src", rewrite.BBMainPkg), env, gotool.Binary(), buildArgs...); err != nil {
		return cli.Errorf("E_COMPILE", "%v", err)
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
			return cli.Errorf("E_LDFLAGS", "linker flag %q is not allowed (only -s, -w and -X importpath.name=value)", w)
		}
	}
	return nil
}
