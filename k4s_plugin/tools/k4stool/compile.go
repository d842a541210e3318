//go:build !k4s_download

package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func init() { subcommands["compile"] = compile }

// compile builds the generated busybox tree (the rewrite's tars, unpacked in
// order into one GOPATH: dependencies, bb's main package, each command) into
// one static binary:
// GOPATH mode (gobusybox's tree is GOPATH-style), CGO_ENABLED=0, -trimpath,
// an empty build id, GOOS/GOARCH from the environment.
func compile(args []string) error {
	fs := flag.NewFlagSet("compile", flag.ExitOnError)
	out := fs.String("out", "bb", "output binary")
	ldflags := fs.String("ldflags", "-s -w", "linker flags (-buildid= is always added)")
	var tags, trees multiFlag
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	fs.Var(&trees, "tree", "a tar of the generated tree, from `k4stool rewrite-deps`, `rewrite-plan` (bb's main) or `rewrite-command` (repeatable)")
	fs.Parse(args)
	if len(trees) == 0 {
		return errorf("E_USAGE", "no -tree given")
	}
	if err := checkLdflags(*ldflags); err != nil {
		return err
	}

	work := mustAbs(".")
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
	buildArgs := []string{"build", "-trimpath", "-o", mustAbs(*out), "-ldflags", strings.TrimSpace(*ldflags + " -buildid=")}
	if len(tags) > 0 {
		buildArgs = append(buildArgs, "-tags", strings.Join(tags, ","))
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
