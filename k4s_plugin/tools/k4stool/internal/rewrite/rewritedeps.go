//go:build !k4s_download

package rewrite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k4s.dev/tools/k4stool/internal/archive"
	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"
)

// CmdDeps writes the dependency packages rewrite-plan listed (every
// non-command package of bb outside the standard library) as pkg/bb does,
// re-printed by bbinternal.WritePkg, into one GOPATH tree packed as a tar.
// It lists them by path (module mode, files only), so it needs none of the
// commands' own files: the rule leaves the first-party ones out of its
// inputs, and editing a command does not rerun it (bbgen.go).
func CmdDeps(args []string) error {
	fs := cli.NewFlags("rewrite-deps")
	gomod := fs.String("gomod", ".", "directory holding go.mod and go.sum")
	modules := fs.String("modules", "modules.tar", "module cache tar from `k4stool download`")
	list := fs.String("list", "deps.txt", "the dependency packages, one a line (from `k4stool rewrite-plan`)")
	out := fs.String("out", "deps.tar", "output tar of the dependencies' tree")
	var tags cli.MultiFlag
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	if err := fs.Parse(args, cli.NoArgs); err != nil {
		return err
	}
	work := cli.MustAbs(".")
	if !cli.Within(work, *list) || !cli.Within(work, *out) {
		return cli.Errorf("E_BAD_PATH", "-list and -out must be inside the working directory")
	}
	data, err := os.ReadFile(*list)
	if err != nil {
		return err
	}
	deps := strings.Fields(string(data))
	gen := filepath.Join(work, "gen")
	// rewrite-commands' and the compile step's environment (GOPATH mode over gen),
	// taken before moduleEnviron makes the module mode's this process's own.
	gopathEnv, err := gotool.Env(work,
		"GOPATH="+gen,
		"GO111MODULE=off",
		"GOFLAGS="+gotool.FlagsWithout("-mod=", "-modcacherw"),
	)
	if err != nil {
		return err
	}
	genv, _, err := moduleEnviron(work, *gomod, *modules, tags)
	if err != nil {
		return err
	}
	if err := writeDepsTree(genv, deps, filepath.Join(gen, "src")); err != nil {
		return err
	}
	precompile(gopathEnv, gen, tags, deps)
	n, err := archive.PackTree(gen, *out, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "k4s: %d dependency packages, %d entries in their tree\n", len(deps), n)
	return nil
}

// precompile compiles the dependencies into GOCACHE as the compile step
// compiles them (-trimpath, the same tags and environment), so that the
// rewrite-commands steps, which run side by side and each type-check against
// the export data of its own dependencies, find them there rather than each
// compiling the packages they share (Kubernetes' for every Kubernetes
// command). Only speed: a failure is left for those steps and the compile
// step to report.
func precompile(gopathEnv []string, gen string, tags, deps []string) {
	if len(deps) == 0 {
		return
	}
	args := []string{"build", "-trimpath"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	start := time.Now()
	if _, _, err := cli.Run(gen, gopathEnv, gotool.Binary(), append(args, deps...)...); err != nil {
		fmt.Fprintf(os.Stderr, "k4s: compiling the dependencies ahead failed (the steps after this one report it): %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "k4s: dependencies compiled into GOCACHE in %.1f s\n", time.Since(start).Seconds())
}
