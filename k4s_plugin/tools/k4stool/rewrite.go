//go:build !k4s_download

package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/u-root/gobusybox/src/pkg/bb/findpkg"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"golang.org/x/tools/go/ast/astutil"
	"golang.org/x/tools/go/packages"
)

func init() { subcommands["rewrite"] = rewrite }

const bbMainPkg = "bb.u-root.com/bb"

// commandName is one path element: what bbin/<name> may be.
var commandName = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9._+-]*$`)

// rewrite turns Go commands into one GOPATH-style busybox source tree, the
// one gobusybox's pkg/bb (what `makebb -g` runs) writes, byte for byte, and
// packs it into one tar. gobusybox's bbinternal rewrites each command; only
// the commands are type-checked, against their dependencies' export data
// (bbgen.go). The tree is the one k4s wrote when it called pkg/bb for the
// commands named by their package path's base name and then rewrote the
// others (explicit names, and Go's own rule that a major-version suffix like
// /v3 is not a command name) under their own names, since pkg/bb names every
// command by its base name and refuses duplicates.
func rewrite(args []string) error {
	fs := flag.NewFlagSet("rewrite", flag.ExitOnError)
	gomod := fs.String("gomod", ".", "directory holding go.mod and go.sum")
	modules := fs.String("modules", "modules.tar", "module cache tar from `k4stool download`")
	out := fs.String("out", "gen.tar", "output tar of the generated tree")
	cmdsOut := fs.String("commands", "commands.json", "output: command name -> package path")
	var names, tags multiFlag
	fs.Var(&names, "name", "PKG=NAME: explicit command name (repeatable)")
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	fs.Parse(args)
	patterns := fs.Args()
	if len(patterns) == 0 {
		return errorf("E_NO_COMMANDS", "no commands given")
	}
	if err := checkPatterns(patterns); err != nil {
		return err
	}

	work := mustAbs(".")
	dir := mustAbs(*gomod)
	if !within(work, dir) || !within(work, *modules) || !within(work, *out) || !within(work, *cmdsOut) {
		return errorf("E_BAD_PATH", "-gomod, -modules, -out and -commands must be inside the working directory")
	}
	modcache := filepath.Join(work, ".k4s-modcache")
	if err := unpackTree(*modules, modcache); err != nil {
		return err
	}
	// The compile step's environment (compile.go), over the tree generated
	// here: the commands are type-checked against dependencies compiled as
	// that step compiles them.
	gopathEnv, err := goEnv(work,
		"GOPATH="+filepath.Join(work, "gen"),
		"GO111MODULE=off",
		"GOFLAGS="+goFlagsWithout("-mod=", "-modcacherw"),
	)
	if err != nil {
		return err
	}
	env, err := goEnv(work,
		"GOMODCACHE="+modcache,
		"GOPROXY=off",
		"GOFLAGS="+strings.TrimSpace(goFlagsWithout("-mod=")+" -mod=readonly"),
	)
	if err != nil {
		return err
	}
	// gobusybox's library reads os.Environ(); make it the sandboxed one.
	setProcessEnv(env)
	// GOROOT as goEnv made it absolute: go/build read the relative one Pants passed
	// when this program started, and gobusybox would take that.
	genv := golang.Default(golang.DisableCGO(), golang.WithGOROOT(os.Getenv("GOROOT")), golang.WithWorkingDir(dir), golang.WithBuildTag(tags...), golang.WithMod(golang.ModReadonly))
	l := log.New(os.Stderr, "gobusybox: ", 0)

	if err := checkExplicitPatterns(genv, patterns); err != nil {
		return err
	}
	paths, err := findpkg.ResolveGlobs(l, genv, findpkg.Env{}, patterns)
	if err != nil {
		return classifyGoError("E_RESOLVE", err)
	}

	cmdNames, err := commandNames(paths, names)
	if err != nil {
		return err
	}

	var plain, renamed []string
	for _, p := range paths {
		if cmdNames[p] == path.Base(p) {
			plain = append(plain, p)
		} else {
			renamed = append(renamed, p)
		}
	}
	// pkg/bb needed at least one command: it rewrote one renamed command
	// under its base name (its package is still called so), then k4s fixed
	// the registered name.
	fixLiteral := ""
	if len(plain) == 0 {
		plain, renamed, fixLiteral = renamed[:1], renamed[1:], renamed[0]
	}

	// What `makebb -g` does (gobusybox's pkg/bb), in this process, with the
	// dependencies' types from export data (bbgen.go).
	gen := filepath.Join(work, "gen")
	g := &bbGen{genv: genv, gen: gen, gopathEnv: gopathEnv, tags: tags}
	if err := g.generate(plain, renamed, cmdNames, fixLiteral); err != nil {
		return err
	}

	manifest := map[string]string{}
	for p, n := range cmdNames {
		manifest[n] = p
	}
	data, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*cmdsOut, append(data, '\n'), 0o644); err != nil {
		return err
	}
	n, err := packTree(gen, *out, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "k4s: %d commands, %d entries in the generated tree\n", len(paths), n)
	return nil
}

// commandNames names each resolved command (path -> name) as `go build` does,
// or as a PKG=NAME of -name says; E_BAD_NAME, E_NAME_UNKNOWN and
// E_DUPLICATE_NAME say what is wrong with the names.
func commandNames(paths, names []string) (map[string]string, error) {
	explicit := map[string]string{}
	for _, kv := range names {
		pkg, name, ok := strings.Cut(kv, "=")
		if !ok || pkg == "" || !commandName.MatchString(name) {
			return nil, errorf("E_BAD_NAME", "%q is not PKG=NAME with a plain command name", kv)
		}
		explicit[pkg] = name
	}
	cmdNames := map[string]string{} // path -> name
	for _, p := range paths {
		cmdNames[p] = goCommandName(p)
		if n, ok := explicit[p]; ok {
			cmdNames[p] = n
		}
	}
	for pkg := range explicit {
		if _, ok := cmdNames[pkg]; !ok {
			return nil, errorf("E_NAME_UNKNOWN", "command_names names %s, which is not among the resolved commands %v", pkg, paths)
		}
	}
	byName := map[string][]string{}
	for _, p := range paths {
		byName[cmdNames[p]] = append(byName[cmdNames[p]], p)
	}
	var dups []string
	for n, ps := range byName {
		if len(ps) > 1 {
			dups = append(dups, fmt.Sprintf("%q from %s", n, strings.Join(ps, " and ")))
		}
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		return nil, errorf("E_DUPLICATE_NAME", "two commands have the same name: %s", strings.Join(dups, "; "))
	}
	return cmdNames, nil
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// goCommandName is the name `go build` gives a command: the last element of
// its package path, or the one before it if the last is a major version
// suffix (go.etcd.io/etcd/etcdctl/v3 -> etcdctl).
func goCommandName(pkgPath string) string {
	elems := strings.Split(pkgPath, "/")
	if len(elems) > 1 && majorVersion.MatchString(elems[len(elems)-1]) {
		return elems[len(elems)-2]
	}
	return elems[len(elems)-1]
}

// checkExplicitPatterns makes every pattern that names one package (no glob,
// no exclusion) either a buildable command or an error that says why.
// gobusybox itself only logs and skips such packages.
func checkExplicitPatterns(genv *golang.Environ, patterns []string) error {
	var explicit []string
	for _, p := range patterns {
		if !strings.HasPrefix(p, "-") && !strings.ContainsAny(p, "*?[") && !strings.HasSuffix(p, "...") {
			explicit = append(explicit, p)
		}
	}
	if len(explicit) == 0 {
		return nil
	}
	pkgs, err := genv.Lookup(packages.NeedName|packages.NeedFiles|packages.NeedModule, explicit...)
	if err != nil {
		return classifyGoError("E_RESOLVE", err)
	}
	var errs []string
	code := ""
	for _, p := range pkgs {
		constraintErr := false
		for _, e := range p.Errors {
			constraintErr = constraintErr || strings.Contains(e.Msg, "build constraints exclude all Go files")
		}
		switch {
		case (constraintErr || len(p.GoFiles) == 0) && needsCgo(p.IgnoredFiles):
			code = "E_CGO"
			errs = append(errs, fmt.Sprintf("%s needs cgo (its Go files import \"C\"), and k4s builds with CGO_ENABLED=0", p.PkgPath))
		case constraintErr:
			code = "E_BUILD_CONSTRAINTS"
			errs = append(errs, fmt.Sprintf("%s: build constraints exclude all Go files for %s/%s", p.PkgPath, genv.GOOS, genv.GOARCH))
		case len(p.Errors) > 0:
			var msgs []string
			for _, e := range p.Errors {
				msgs = append(msgs, e.Msg)
			}
			ce := classifyGoError("E_RESOLVE", fmt.Errorf("%s", strings.Join(msgs, "; "))).(*codedError)
			code = ce.code
			errs = append(errs, fmt.Sprintf("%s: %s", p.PkgPath, ce.msg))
		case len(p.GoFiles) == 0:
			code = "E_BUILD_CONSTRAINTS"
			errs = append(errs, fmt.Sprintf("%s: build constraints exclude all Go files for %s/%s", p.PkgPath, genv.GOOS, genv.GOARCH))
		case p.Name != "main":
			code = "E_NOT_MAIN"
			errs = append(errs, fmt.Sprintf("%s is package %s, not a command (package main)", p.PkgPath, p.Name))
		}
	}
	if len(errs) > 0 {
		return errorf(code, "%s", strings.Join(errs, "\n"))
	}
	return nil
}

var importC = regexp.MustCompile(`(?m)^\s*import\s+"C"`)

func needsCgo(files []string) bool {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil && importC.Match(data) {
			return true
		}
	}
	return false
}

// addMainImports adds the renamed commands to bb's main.go (after pkg/bb
// wrote it for the others), as k4s did when a second gobusybox pass rewrote
// them: re-printed with go/format only.
func addMainImports(mainGo string, paths []string) error {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, mainGo, nil, parser.ParseComments)
	if err != nil {
		return err
	}
	for _, p := range paths {
		astutil.AddNamedImport(fset, f, "_", p)
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return err
	}
	return os.WriteFile(mainGo, buf.Bytes(), 0o644)
}

// renameRegistration changes the name a rewritten command registers under.
func renameRegistration(gen, pkgPath, name string) error {
	dir := filepath.Join(gen, "src", pkgPath)
	old := []byte(fmt.Sprintf(".Register(%q,", path.Base(pkgPath)))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, old) {
			return os.WriteFile(p, bytes.Replace(data, old, []byte(fmt.Sprintf(".Register(%q,", name)), 1), 0o644)
		}
	}
	return fmt.Errorf("no registration of %s found in %s", pkgPath, dir)
}
