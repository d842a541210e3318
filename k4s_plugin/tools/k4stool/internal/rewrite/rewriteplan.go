//go:build !k4s_download

package rewrite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"k4s.dev/tools/k4stool/internal/archive"
	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"

	"github.com/u-root/gobusybox/src/pkg/bb/findpkg"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"golang.org/x/tools/go/ast/astutil"
	"golang.org/x/tools/go/packages"
)

const BBMainPkg = "bb.u-root.com/bb"

// commandName is one path element: what bbin/<name> may be.
var commandName = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9._+-]*$`)

// rewritePlanFile is plan.json: the commands as rewrite-commands rewrites
// them, and the first-party files the dependencies' step must not read (the
// commands' own), as build-root globs.
type rewritePlanFile struct {
	Commands []plannedCommand `json:"commands"`
	Exclude  []string         `json:"exclude"`
	Groups   []plannedGroup   `json:"groups"`
}

// plannedGroup is the commands one rewrite-commands step rewrites: those of
// one Go module (groupCommands), with the files that step reads: File, the
// commands as JSON; Needs, the dependency packages they import, directly or
// not, one a line.
type plannedGroup struct {
	Name     string   `json:"name"`
	Module   string   `json:"module"`
	Commands []string `json:"commands"`
	File     string   `json:"file"`
	Needs    string   `json:"needs"`
}

// CmdPlan is the first of the rewrite's steps (bbgen.go): it resolves the
// command patterns and names, lists their graph without types (module mode),
// and writes the command name -> package map, plan.json, the dependency list
// (rewrite-deps), each command's own files as one tar, the groups of commands
// (rewrite-commands) and bb's main package. The commands named by their package path's base name are
// the ones k4s handed pkg/bb; the others (explicit names, and Go's rule that
// a major-version suffix like /v3 is not a command name) it rewrote under
// their own names, since pkg/bb names every command by its base name and
// refuses duplicates (planCommands).
func CmdPlan(args []string) error {
	fs := cli.NewFlags("rewrite-plan")
	gomod := fs.String("gomod", ".", "directory holding go.mod and go.sum")
	modules := fs.String("modules", "modules.tar", "module cache tar from `k4stool download`")
	cmdsOut := fs.String("commands", "commands.json", "output: command name -> package path")
	planOut := fs.String("plan", "plan.json", "output: the commands, their kinds and source tars; files to exclude")
	depsOut := fs.String("deps", "deps.txt", "output: the dependency packages, one a line")
	bbOut := fs.String("bbmain", "bbmain.tar", "output: bb's main package")
	srcDir := fs.String("srcdir", "src", "output directory: per command, a tar of its own files (NAME.tar); per group of commands (groups/), their list (GROUP.json) and the dependency packages they import, directly or not (GROUP.deps)")
	var names, tags cli.MultiFlag
	fs.Var(&names, "name", "PKG=NAME: explicit command name (repeatable)")
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	if err := fs.Parse(args, cli.AnyArgs); err != nil {
		return err
	}
	patterns := fs.Args()
	if len(patterns) == 0 {
		return cli.Errorf("E_NO_COMMANDS", "no commands given")
	}
	if err := cli.CheckPatterns(patterns); err != nil {
		return err
	}
	work := cli.MustAbs(".")
	for _, p := range []string{*cmdsOut, *planOut, *depsOut, *bbOut, *srcDir} {
		if !cli.Within(work, p) {
			return cli.Errorf("E_BAD_PATH", "-commands, -plan, -deps, -bbmain and -srcdir must be inside the working directory")
		}
	}
	genv, modcache, err := moduleEnviron(work, *gomod, *modules, tags)
	if err != nil {
		return err
	}
	l := log.New(os.Stderr, "gobusybox: ", 0)

	if err := checkExplicitPatterns(genv, patterns); err != nil {
		return err
	}
	paths, err := findpkg.ResolveGlobs(l, genv, findpkg.Env{}, patterns)
	if err != nil {
		return gotool.ClassifyError("E_RESOLVE", err)
	}
	cmdNames, err := commandNames(paths, names)
	if err != nil {
		return err
	}
	cmds := planCommands(paths, cmdNames)
	roots, listed, err := listCommands(genv, paths)
	if err != nil {
		return err
	}

	// Each command's own files, unchanged, as GOPATH mode finds them.
	if err := os.MkdirAll(*srcDir, 0o755); err != nil {
		return err
	}
	plan := rewritePlanFile{Commands: cmds, Exclude: []string{}}
	for i := range cmds {
		c := &cmds[i]
		tmp := filepath.Join(work, ".k4s-cmdsrc", c.Name)
		if err := copyPackageFiles(roots[c.Path], filepath.Join(tmp, "src", c.Path)); err != nil {
			return err
		}
		c.Src = filepath.ToSlash(filepath.Join(*srcDir, c.Name+".tar"))
		if _, err := archive.PackTree(tmp, c.Src, nil); err != nil {
			return err
		}
		plan.Exclude = append(plan.Exclude, firstPartyFiles(work, modcache, roots[c.Path])...)
	}
	sort.Strings(plan.Exclude)
	deps := depPackages(listed, roots)
	if err := writeLines(*depsOut, deps); err != nil {
		return err
	}
	if plan.Groups, err = writeGroups(filepath.Join(*srcDir, "groups"), cmds, roots); err != nil {
		return err
	}

	// bb's main package: it reads the list only.
	bb := filepath.Join(work, ".k4s-bbmain")
	if err := writeBBMainTree(filepath.Join(bb, "src", BBMainPkg), cmds); err != nil {
		return err
	}
	if _, err := archive.PackTree(bb, *bbOut, nil); err != nil {
		return err
	}

	manifest := map[string]string{}
	for p, n := range cmdNames {
		manifest[n] = p
	}
	if err := writeJSON(*cmdsOut, manifest); err != nil {
		return err
	}
	if err := writeJSON(*planOut, plan); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "k4s: %d commands, %d dependency packages\n", len(paths), len(deps))
	return nil
}

// groupCommands groups the commands by Go module, in the order of their
// first command: one rewrite-commands step per module. Small commands then
// share a step (u-root's core commands are one module), while a first-party
// module is a group of its own, so an edit of one of its commands reruns only
// that group. A module's commands share most of their dependencies, which the
// step unpacks and hashes once for all of them (`go list -export`).
func groupCommands(cmds []plannedCommand, roots map[string]*packages.Package) (keys []string, byKey map[string][]plannedCommand) {
	byKey = map[string][]plannedCommand{}
	for _, c := range cmds {
		key := c.Path
		if m := roots[c.Path].Module; m != nil {
			key = m.Path
		}
		if byKey[key] == nil {
			keys = append(keys, key)
		}
		byKey[key] = append(byKey[key], c)
	}
	return keys, byKey
}

// groupName is a file name for a module path: '/' is not in a module path's
// characters, '+' is not either (golang.org/x/mod/module.CheckPath), so
// distinct modules get distinct names.
func groupName(module string) string {
	return strings.ReplaceAll(module, "/", "+")
}

// writeGroups writes each group's commands (GROUP.json) and the dependency
// packages they need (GROUP.deps) under dir.
func writeGroups(dir string, cmds []plannedCommand, roots map[string]*packages.Package) ([]plannedGroup, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	keys, byKey := groupCommands(cmds, roots)
	groups := []plannedGroup{}
	for _, key := range keys {
		g := plannedGroup{Name: groupName(key), Module: key}
		g.File = filepath.ToSlash(filepath.Join(dir, g.Name+".json"))
		g.Needs = filepath.ToSlash(filepath.Join(dir, g.Name+".deps"))
		var pkgs []*packages.Package
		for _, c := range byKey[key] {
			g.Commands = append(g.Commands, c.Path)
			pkgs = append(pkgs, roots[c.Path])
		}
		if err := writeJSON(g.File, byKey[key]); err != nil {
			return nil, err
		}
		if err := writeLines(g.Needs, depPackages(pkgs, roots)); err != nil {
			return nil, err
		}
		groups = append(groups, g)
	}
	return groups, nil
}

// firstPartyFiles are the files of a command's package that lie in the
// build's own sources (not in the module cache), as build-root globs: its Go
// files (every *.go directly in its directory) and its other and embedded
// files.
func firstPartyFiles(work, modcache string, p *packages.Package) []string {
	dir := filepath.Dir(p.GoFiles[0])
	if !cli.Within(work, dir) || cli.Within(modcache, dir) {
		return nil
	}
	rel := func(f string) string {
		r, _ := filepath.Rel(work, f)
		return filepath.ToSlash(r)
	}
	out := []string{rel(filepath.Join(dir, "*.go"))}
	for _, list := range [][]string{p.OtherFiles, p.EmbedFiles} {
		for _, f := range list {
			if cli.Within(work, f) && !cli.Within(modcache, f) {
				out = append(out, rel(f))
			}
		}
	}
	return out
}

func writeLines(file string, lines []string) error {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l + "\n")
	}
	return os.WriteFile(file, buf.Bytes(), 0o644)
}

func writeJSON(file string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(data, '\n'), 0o644)
}

// moduleEnviron unpacks the module cache tar and makes the go environment of
// module mode over it (GOPROXY=off, -mod=readonly) this process's own, for
// gobusybox's library, which reads os.Environ(); it returns gobusybox's
// environment for the module in gomod, and the module cache's path.
func moduleEnviron(work, gomod, modules string, tags []string) (*golang.Environ, string, error) {
	dir := cli.MustAbs(gomod)
	if !cli.Within(work, dir) || !cli.Within(work, modules) {
		return nil, "", cli.Errorf("E_BAD_PATH", "-gomod and -modules must be inside the working directory")
	}
	modcache := filepath.Join(work, ".k4s-modcache")
	if err := archive.UnpackTree(modules, modcache); err != nil {
		return nil, "", err
	}
	env, err := gotool.Env(work,
		"GOMODCACHE="+modcache,
		"GOPROXY=off",
		"GOFLAGS="+strings.TrimSpace(gotool.FlagsWithout("-mod=")+" -mod=readonly"),
	)
	if err != nil {
		return nil, "", err
	}
	gotool.SetProcessEnv(env)
	// GOROOT as goEnv made it absolute: go/build read the relative one Pants passed
	// when this program started, and gobusybox would take that.
	genv := golang.Default(golang.DisableCGO(), golang.WithGOROOT(os.Getenv("GOROOT")), golang.WithWorkingDir(dir), golang.WithBuildTag(tags...), golang.WithMod(golang.ModReadonly))
	return genv, modcache, nil
}

// commandNames names each resolved command (path -> name) as `go build` does,
// or as a PKG=NAME of -name says; E_BAD_NAME, E_NAME_UNKNOWN and
// E_DUPLICATE_NAME say what is wrong with the names.
func commandNames(paths, names []string) (map[string]string, error) {
	explicit := map[string]string{}
	for _, kv := range names {
		pkg, name, ok := strings.Cut(kv, "=")
		if !ok || pkg == "" || !commandName.MatchString(name) {
			return nil, cli.Errorf("E_BAD_NAME", "%q is not PKG=NAME with a plain command name", kv)
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
			return nil, cli.Errorf("E_NAME_UNKNOWN", "command_names names %s, which is not among the resolved commands %v", pkg, paths)
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
		return nil, cli.Errorf("E_DUPLICATE_NAME", "two commands have the same name: %s", strings.Join(dups, "; "))
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
		return gotool.ClassifyError("E_RESOLVE", err)
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
			ce := gotool.ClassifyError("E_RESOLVE", fmt.Errorf("%s", strings.Join(msgs, "; "))).(*cli.CodedError)
			code = ce.Code
			errs = append(errs, fmt.Sprintf("%s: %s", p.PkgPath, ce.Msg))
		case len(p.GoFiles) == 0:
			code = "E_BUILD_CONSTRAINTS"
			errs = append(errs, fmt.Sprintf("%s: build constraints exclude all Go files for %s/%s", p.PkgPath, genv.GOOS, genv.GOARCH))
		case p.Name != "main":
			code = "E_NOT_MAIN"
			errs = append(errs, fmt.Sprintf("%s is package %s, not a command (package main)", p.PkgPath, p.Name))
		}
	}
	if len(errs) > 0 {
		return cli.Errorf(code, "%s", strings.Join(errs, "\n"))
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
