//go:build !k4s_download

package download

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"

	"github.com/u-root/gobusybox/src/pkg/bb/findpkg"
	"github.com/u-root/gobusybox/src/pkg/golang"
)

// CmdTidy derives a profile's tools.go from its go_busybox `commands` and tidies
// go.mod and go.sum the way the build reads them: with the `patches` applied.
//
// tools.go imports every command (globs expanded by gobusybox, as the rewrite
// step expands them), so that `go mod tidy` keeps every module the commands
// need. A plain `go mod tidy` reads the modules as published, but the build
// compiles them patched: a patch may drop an import that cannot be resolved
// (flannel's purego patch) or add one (runc's pure-Go seccomp). So tidy runs
// twice in a module cache private to the sandbox: `go mod tidy -e` puts every
// patched module into the build list, the patches are applied to the cache
// (as the download step applies them), and a strict `go mod tidy` sees the
// patched imports. The results go to -out; the Pants goal writes them back.
func CmdTidy(args []string) error {
	fset := cli.NewFlags("tidy")
	gomod := fset.String("gomod", ".", "directory holding go.mod and go.sum")
	out := fset.String("out", "tidy", "output directory for go.mod, go.sum and tools.go")
	dlcache := fset.String("dlcache", "", "directory kept across runs as a module proxy cache (optional)")
	generatedBy := fset.String("generated-by", "`pants k4s-tidy`", "the command that regenerates tools.go, named in its header")
	var tags, patchFiles cli.MultiFlag
	fset.Var(&tags, "tag", "Go build tag (repeatable); globs are expanded with them, as in the rewrite")
	fset.Var(&patchFiles, "patch", "patch file for third-party modules (repeatable; see patch.go)")
	if err := fset.Parse(args, cli.AnyArgs); err != nil {
		return err
	}
	patterns := fset.Args()
	if len(patterns) == 0 {
		return cli.Errorf("E_NO_COMMANDS", "no commands given")
	}
	if err := cli.CheckPatterns(patterns); err != nil {
		return err
	}
	work := cli.MustAbs(".")
	dir := cli.MustAbs(*gomod)
	if !cli.Within(work, dir) || !cli.Within(work, *out) || (*dlcache != "" && !cli.Within(work, *dlcache)) {
		return cli.Errorf("E_BAD_PATH", "-gomod, -out and -dlcache must be inside the working directory")
	}
	modcache := filepath.Join(work, ".k4s-modcache")
	env, err := downloadEnv(work, modcache, *dlcache)
	if err != nil {
		return err
	}
	// The go command caches an index of each module in the module cache, taking
	// the cache to be immutable; here the patches change it between the two
	// tidies, so the second must read the files.
	env = append(env, "GODEBUG=goindex=0")
	if err := checkReplaces(work, dir, env); err != nil {
		return err
	}
	imports, err := commandImports(dir, env, tags, patterns)
	if err != nil {
		return err
	}
	toolsGo := renderToolsGo(*generatedBy, imports)
	if err := os.WriteFile(filepath.Join(dir, "tools.go"), toolsGo, 0o644); err != nil {
		return err
	}
	// -e: an unpatched module may import what cannot be fetched; the strict run
	// below, on the patched modules, must then succeed.
	if _, _, err := cli.Run(dir, env, gotool.Binary(), "mod", "tidy", "-e"); err != nil {
		return gotool.ClassifyError("E_TIDY", err)
	}
	if _, err := applyPatches(dir, env, patchFiles); err != nil {
		return err
	}
	if _, _, err := cli.Run(dir, env, gotool.Binary(), "mod", "tidy"); err != nil {
		return gotool.ClassifyError("E_TIDY", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"go.mod", "go.sum", "tools.go"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "k4s: tools.go imports %d commands\n", len(imports))
	return nil
}

// commandImports returns the import paths of the commands: patterns that name
// one package as they are, globs (with the exclusions) expanded by gobusybox's
// findpkg as the rewrite step expands them, against the modules go.mod pins.
func commandImports(dir string, env, tags, patterns []string) ([]string, error) {
	set := map[string]bool{}
	var globs []string
	for _, p := range patterns {
		switch {
		case strings.HasPrefix(p, "-"):
			globs = append(globs, p)
		case strings.ContainsAny(p, "*?["):
			globs = append(globs, p)
		default:
			set[p] = true
		}
	}
	if hasInclude(globs) {
		// gobusybox's library reads os.Environ(); make it the sandboxed one, with
		// -mod=mod: go.sum may still lack the glob's module (it is tidied next).
		saved := os.Environ()
		gotool.SetProcessEnv(append(env, "GOFLAGS="+strings.TrimSpace(gotool.FlagsWithout("-mod=")+" -modcacherw")))
		genv := golang.Default(golang.DisableCGO(), golang.WithGOROOT(os.Getenv("GOROOT")), golang.WithWorkingDir(dir), golang.WithBuildTag(tags...), golang.WithMod(golang.ModBehavior("mod")))
		paths, err := findpkg.ResolveGlobs(log.New(os.Stderr, "gobusybox: ", 0), genv, findpkg.Env{}, globs)
		gotool.SetProcessEnv(saved)
		if err != nil {
			return nil, cli.Errorf("E_RESOLVE", "expanding %s: %v; a glob must point into a module go.mod already requires (add it with `go get MODULE@VERSION` in the profile's directory)", strings.Join(globs, " "), err)
		}
		for _, p := range paths {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func hasInclude(patterns []string) bool {
	for _, p := range patterns {
		if !strings.HasPrefix(p, "-") {
			return true
		}
	}
	return false
}

// renderToolsGo is tools.go: a file that is never built (the `tools` tag)
// and imports every command, so `go mod tidy` sees them.
func renderToolsGo(generatedBy string, imports []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by %s; DO NOT EDIT.\n\n", generatedBy)
	b.WriteString("//go:build tools\n\n")
	b.WriteString("// Package tools imports every command of this directory's go_busybox targets (their\n")
	b.WriteString("// `commands` in BUILD, globs expanded), so that go.mod and go.sum pin every module\n")
	fmt.Fprintf(&b, "// they need. After editing the commands, run %s: it tidies\n", generatedBy)
	b.WriteString("// with the targets' `patches` applied, which a plain `go mod tidy` does not see.\n")
	b.WriteString("package tools\n\nimport (\n")
	for _, p := range imports {
		fmt.Fprintf(&b, "\t_ %q\n", p)
	}
	b.WriteString(")\n")
	return []byte(b.String())
}
