package download

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k4s.dev/tools/k4stool/internal/archive"
	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"
)

// CmdDownload fetches, through the GOPROXY passed into the sandbox and verified
// against go.sum, every module that the commands' packages need, and packs
// just those packages (plus the go.mod files of the module graph) into one
// deterministic tar that stands in for a module cache in the rewrite step.
// Whole modules would be far larger (u-root's own module is 150 MB, most of
// it test data).
//
// The module cache is private to the sandbox, so what it holds afterwards is
// exactly what the go command touched, and the tar depends only on go.mod,
// go.sum, the patterns and GOOS/GOARCH/tags. A Pants named cache (-dlcache)
// serves as a local module proxy in front of GOPROXY, so later downloads
// come from disk; everything from it is still verified against go.sum.
//
// go.sum is the authority: if the go command would have to add a line to it,
// the step fails (E_GOSUM_MISSING) instead of trusting the network.
func CmdDownload(args []string) error {
	fset := cli.NewFlags("download")
	gomod := fset.String("gomod", ".", "directory holding go.mod and go.sum")
	out := fset.String("out", "modules.tar", "output tar")
	dlcache := fset.String("dlcache", "", "directory kept across runs as a module proxy cache (optional)")
	modulesJSON := fset.String("modules-json", "", "also write the modules the commands use (path, version, go.sum hash, patches), for the SBOM (optional)")
	var tags cli.MultiFlag
	fset.Var(&tags, "tag", "Go build tag (repeatable)")
	var patchFiles, localModules cli.MultiFlag
	fset.Var(&patchFiles, "patch", "patch file for third-party modules (repeatable; see patch.go)")
	fset.Var(&localModules, "local-module", "PATH@VERSION: a module go.mod replaces with a directory whose packages the commands use, for -modules-json (repeatable; from `k4stool imports`)")
	if err := fset.Parse(args, cli.AnyArgs); err != nil {
		return err
	}
	if err := cli.CheckPatterns(fset.Args()); err != nil {
		return err
	}
	patterns := listPatterns(fset.Args())

	work := cli.MustAbs(".")
	dir := cli.MustAbs(*gomod)
	if !cli.Within(work, dir) || !cli.Within(work, *out) || (*dlcache != "" && !cli.Within(work, *dlcache)) ||
		(*modulesJSON != "" && !cli.Within(work, *modulesJSON)) {
		return cli.Errorf("E_BAD_PATH", "-gomod, -out, -dlcache and -modules-json must be inside the working directory")
	}
	modcache := filepath.Join(work, ".k4s-modcache")
	if err := os.RemoveAll(modcache); err != nil {
		return err
	}
	sumPath := filepath.Join(dir, "go.sum")
	before, err := os.ReadFile(sumPath)
	if err != nil {
		return cli.Errorf("E_NO_GOSUM", "%s: %v", *gomod, err)
	}
	env, err := downloadEnv(work, modcache, *dlcache)
	if err != nil {
		return err
	}
	if err := checkReplaces(work, dir, env); err != nil {
		return err
	}

	patched, err := applyPatches(dir, env, patchFiles)
	if err != nil {
		return err
	}

	// No patterns: the commands are first-party and import only the standard
	// library (`k4stool imports`); nothing to list or fetch.
	mods, files := map[string]bool{}, map[string]bool{}
	if len(patterns) > 0 {
		mods, files, err = listPackages(dir, env, modcache, *gomod, tags, patterns, fset.Args())
		if err != nil {
			return blamePatches(err, patched)
		}
	}
	for _, m := range localModules {
		if p, v, ok := strings.Cut(m, "@"); !ok || p == "" || v == "" {
			return cli.Errorf("E_USAGE", "-local-module %q is not PATH@VERSION", m)
		}
		mods[m] = true
	}
	dl := filepath.Join(modcache, "cache", "download")
	if err := addModuleRootsAndMetadata(modcache, dl, files); err != nil {
		return err
	}
	if *dlcache != "" {
		if err := fillProxyCache(dl, cli.MustAbs(*dlcache)); err != nil {
			return err
		}
	}
	after, err := os.ReadFile(sumPath)
	if err != nil {
		return err
	}
	if !bytes.Equal(before, after) {
		return cli.Errorf("E_GOSUM_MISSING", "go.sum in %s is incomplete: the go command needed to add lines to it. Run `go mod tidy` in %s and commit go.sum", *gomod, *gomod)
	}
	n, err := archive.PackFiles(modcache, *out, files)
	if err != nil {
		return err
	}
	if *modulesJSON != "" {
		if err := writeModulesJSON(*modulesJSON, after, mods, patched); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "k4s: packed %d files from %d modules\n", n, len(mods))
	return nil
}

// downloadEnv is the go command's environment for the download: a module
// cache private to the sandbox, go.mod and go.sum read-only, and, with a
// dlcache, that directory as a module proxy in front of GOPROXY.
func downloadEnv(work, modcache, dlcache string) ([]string, error) {
	extra := []string{
		"GOMODCACHE=" + modcache,
		"GOFLAGS=" + strings.TrimSpace(gotool.FlagsWithout("-mod=")+" -mod=readonly -modcacherw"),
	}
	if dlcache != "" {
		proxy := os.Getenv("GOPROXY")
		if proxy == "" {
			proxy = "https://proxy.golang.org,direct"
		}
		extra = append(extra, "GOPROXY=file://"+filepath.ToSlash(cli.MustAbs(dlcache))+","+proxy)
	}
	return gotool.Env(work, extra...)
}

// listPackages runs `go list -deps` on the patterns and returns the modules
// (path@version) whose packages they use and the files of those packages
// (relative to modcache; no tests; embedded files too). A package of a module
// replaced by a local directory is part of the input digest, not listed.
func listPackages(dir string, env []string, modcache, gomod string, tags, patterns, commands []string) (map[string]bool, map[string]bool, error) {
	listArgs := []string{"list", "-e", "-deps", "-json=ImportPath,Dir,Standard,Module,EmbedFiles,Error,DepOnly,Deps"}
	if len(tags) > 0 {
		listArgs = append(listArgs, "-tags", strings.Join(tags, ","))
	}
	listOut, _, err := cli.Run(dir, env, gotool.Binary(), append(listArgs, patterns...)...)
	if err != nil {
		return nil, nil, gotool.ClassifyError("E_DOWNLOAD", err)
	}
	dec := json.NewDecoder(strings.NewReader(listOut))
	mods := map[string]bool{}
	files := map[string]bool{}
	// A glob is listed as its whole subtree (cmds/core/... for cmds/core/e*): the
	// go.sum errors that count are those of the packages the commands select and
	// their dependencies, and a glob that selects nothing is named as such (it was
	// reported as go.sum missing every module of the subtree).
	var roots []listedRoot
	sumErrs := map[string]string{}
	for {
		var p struct {
			ImportPath string
			Dir        string
			Standard   bool
			DepOnly    bool
			Deps       []string
			EmbedFiles []string
			Error      *struct{ Err string }
			Module     *struct {
				Path, Version, Dir string
				Main               bool
			}
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, err
		}
		if !p.DepOnly {
			roots = append(roots, listedRoot{p.ImportPath, p.Deps})
		}
		if p.Error != nil && strings.Contains(p.Error.Err, "missing go.sum entry") {
			sumErrs[p.ImportPath] = p.Error.Err
		}
		if p.Standard || p.Module == nil || p.Module.Main || p.Dir == "" || p.Module.Dir == "" {
			continue
		}
		mods[p.Module.Path+"@"+p.Module.Version] = true
		rel, err := filepath.Rel(modcache, p.Dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module replaced by a local directory: part of the input digest
		}
		entries, err := os.ReadDir(p.Dir)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), "_test.go") {
				files[filepath.ToSlash(filepath.Join(rel, e.Name()))] = true
			}
		}
		for _, ef := range p.EmbedFiles {
			files[filepath.ToSlash(filepath.Join(rel, ef))] = true
		}
	}
	selected, unmatched := selectedPackages(roots, commands)
	if len(unmatched) > 0 {
		return nil, nil, cli.Errorf("E_UNKNOWN_PACKAGE", "%s matches no package (go list found %d under the glob's directory)", strings.Join(unmatched, ", "), len(roots))
	}
	var errs []string
	for pkg, msg := range sumErrs {
		if selected[pkg] {
			errs = append(errs, msg)
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, nil, cli.Errorf("E_GOSUM_MISSING", "go.sum in %s does not pin modules the commands need:\n%s", gomod, strings.Join(errs, "\n"))
	}
	return mods, files, nil
}

type listedRoot struct {
	path string
	deps []string
}

// selectedPackages is what the command patterns select among the listed
// packages (as gobusybox selects: globs on path elements, `-` exclusions),
// with their dependencies; and the globs that select no package.
func selectedPackages(roots []listedRoot, commands []string) (map[string]bool, []string) {
	var include, exclude []string
	for _, c := range commands {
		if strings.HasPrefix(c, "-") {
			exclude = append(exclude, c[1:])
		} else {
			include = append(include, c)
		}
	}
	selected := map[string]bool{}
	var unmatched []string
	for _, pattern := range include {
		found := false
		for _, r := range roots {
			if !matchPattern(pattern, r.path) {
				continue
			}
			excluded := false
			for _, x := range exclude {
				excluded = excluded || matchPattern(x, r.path)
			}
			if excluded {
				continue
			}
			found = true
			selected[r.path] = true
			for _, d := range r.deps {
				selected[d] = true
			}
		}
		if !found && strings.ContainsAny(pattern, "*?[") {
			unmatched = append(unmatched, pattern)
		} else if !found {
			selected[pattern] = true // an explicit path go list could not load: its own error counts
		}
	}
	return selected, unmatched
}

// addModuleRootsAndMetadata adds to files what the go command needs offline
// beyond the packages' files: every extracted module's root directory and the
// module metadata it fetched into dl.
func addModuleRootsAndMetadata(modcache, dl string, files map[string]bool) error {
	// Every extracted module's root directory, even where no package of it
	// is used: to rule out an ambiguous import the go command looks into
	// each module that could hold the package's path (github.com/urfave/cli
	// for github.com/urfave/cli/v2). Without the package's files an empty
	// root gives the same answer, and offline it must find the module there.
	err := filepath.WalkDir(modcache, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == modcache {
			return filepath.SkipDir // no module outside the main module
		}
		if err != nil || !d.IsDir() || p == modcache {
			return err
		}
		rel, _ := filepath.Rel(modcache, p)
		if rel == "cache" {
			return filepath.SkipDir
		}
		if strings.Contains(d.Name(), "@") {
			files[filepath.ToSlash(rel)] = true
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Module metadata the go command fetched (go.mod files of the module
	// graph, .info, .ziphash): all small, all needed offline later.
	return filepath.WalkDir(dl, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dl {
			return filepath.SkipDir // no module outside the main module
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(modcache, p)
		rel = filepath.ToSlash(rel)
		switch {
		case strings.HasPrefix(rel, "cache/download/sumdb/"):
		case strings.HasSuffix(rel, ".mod"), strings.HasSuffix(rel, ".info"), strings.HasSuffix(rel, ".ziphash"):
			files[rel] = true
		}
		return nil
	})
}

// usedModule is one module whose packages the commands compile, as the SBOM
// lists it: Sum is go.sum's hash of the module's content (h1:...), empty for a
// module replaced by a local directory; Patches are the patch files applied to it.
type usedModule struct {
	Path    string   `json:"path"`
	Version string   `json:"version"`
	Sum     string   `json:"sum"`
	Patches []string `json:"patches"`
}

// writeModulesJSON writes the modules (path@version keys of mods) sorted by path,
// with their go.sum hashes and the patches applied to them.
func writeModulesJSON(path string, gosum []byte, mods map[string]bool, patched map[string][]string) error {
	sums := map[string]string{}
	for _, line := range strings.Split(string(gosum), "\n") {
		if f := strings.Fields(line); len(f) == 3 && !strings.HasSuffix(f[1], "/go.mod") {
			sums[f[0]+"@"+f[1]] = f[2]
		}
	}
	list := []usedModule{}
	for key := range mods {
		p, v, _ := strings.Cut(key, "@")
		patches := patched[p]
		if patches == nil {
			patches = []string{}
		}
		list = append(list, usedModule{Path: p, Version: v, Sum: sums[key], Patches: patches})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	data, err := json.MarshalIndent(list, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// checkReplaces refuses go.mod `replace` directives that point at a directory
// outside the sandbox: the go command would read host files that are in no
// cache key (a remote cache would then serve results built from them). Inside
// the sandbox, every file is an input Pants tracks: the module's own files and
// those of the go_busybox's `local_modules`.
func checkReplaces(work, dir string, env []string) error {
	mf, err := readGoMod(dir, env)
	if err != nil {
		return err
	}
	for _, r := range mf.Replace {
		if r.New.Version != "" {
			continue // module -> module@version: fetched and checked against go.sum
		}
		target := r.New.Path
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		if !cli.Within(work, target) {
			return replaceOutside(r.Old.Path, r.New.Path)
		}
		if _, err := os.Stat(filepath.Join(target, "go.mod")); err != nil {
			rel, _ := filepath.Rel(work, target)
			return cli.Errorf("E_REPLACE_MISSING", "go.mod replaces %s with the directory %s, but no go.mod is there (%s): list that module's `files` target (its go.mod, go.sum and Go files) in the go_busybox's `local_modules`", r.Old.Path, r.New.Path, filepath.ToSlash(rel))
		}
	}
	return nil
}

// goMod is go.mod as `go mod edit -json` prints it, the parts k4stool reads.
type goMod struct {
	Module  struct{ Path string }
	Require []struct{ Path, Version string }
	Replace []struct {
		Old struct{ Path string }
		New struct{ Path, Version string }
	}
}

// readGoMod reads dir's go.mod with the go command (nothing is fetched).
func readGoMod(dir string, env []string) (*goMod, error) {
	out, _, err := cli.Run(dir, env, gotool.Binary(), "mod", "edit", "-json")
	if err != nil {
		return nil, gotool.ClassifyError("E_DOWNLOAD", err)
	}
	var mf goMod
	if err := json.Unmarshal([]byte(out), &mf); err != nil {
		return nil, err
	}
	return &mf, nil
}

func replaceOutside(old, dir string) error {
	return cli.Errorf("E_REPLACE_OUTSIDE", "go.mod replaces %s with the directory %s, outside the repository files this build was given; k4s builds only from files Pants tracks: replace it with a directory of the repository and list that module's `files` target in the go_busybox's `local_modules`", old, dir)
}

// listPatterns turns gobusybox command patterns into `go list` patterns
// that cover them: exclusions dropped, globs widened to prefix/... .
func listPatterns(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		if strings.HasPrefix(p, "-") {
			continue
		}
		elems := strings.Split(p, "/")
		for i, e := range elems {
			if strings.ContainsAny(e, "*?[\\") {
				p = strings.Join(append(elems[:i:i], "..."), "/")
				break
			}
		}
		out = append(out, p)
	}
	return out
}

// fillProxyCache copies what the go command downloaded (.info, .mod, .zip)
// into dst, laid out as a GOPROXY file:// tree. Files are written under a
// temporary name and renamed, so a concurrent or killed run leaves no
// partial file that a later run would read.
func fillProxyCache(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == src {
			return filepath.SkipDir
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if strings.HasPrefix(rel, "sumdb") || !(strings.HasSuffix(rel, ".info") || strings.HasSuffix(rel, ".mod") || strings.HasSuffix(rel, ".zip")) {
			return nil
		}
		target := filepath.Join(dst, rel)
		if _, err := os.Stat(target); err == nil {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(target), ".k4s-tmp-*")
		if err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return err
		}
		_, err = io.Copy(tmp, in)
		in.Close()
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), target)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
		return err
	})
}

// blamePatches re-codes a failure to resolve the packages after patches were
// applied as E_PATCH_IMPORTS when it names a patched module: a patch that adds
// an import (of a module go.sum does not pin, or none provides) is at fault,
// not go.sum or the commands.
func blamePatches(err error, patched map[string][]string) error {
	ce, ok := err.(*cli.CodedError)
	if !ok || len(patched) == 0 {
		return err
	}
	switch ce.Code {
	case "E_GOSUM_MISSING", "E_UNKNOWN_PACKAGE", "E_DOWNLOAD":
	default:
		return err
	}
	var mods []string
	for m := range patched {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		if strings.Contains(ce.Msg, m+"/") || strings.Contains(ce.Msg, m+"@") || strings.Contains(ce.Msg, m+" ") || strings.HasSuffix(ce.Msg, m) {
			return cli.Errorf("E_PATCH_IMPORTS", "after applying %s to %s: %s", strings.Join(patched[m], ", "), m, ce.Msg)
		}
	}
	return err
}
