package download

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
)

// Patches to third-party modules, the way rules_go's go_repository(patches=)
// does it: git-style unified diffs whose file names start with the module
// path, e.g.
//
//	--- a/github.com/flannel-io/flannel/main.go
//	+++ b/github.com/flannel-io/flannel/main.go
//
// They are applied in the download step to the sandbox's private module
// cache, after the module was fetched and verified against go.sum and
// before the package graph is listed, so a patch can drop an import (and
// with it a dependency that cannot be built or fetched). The patched files
// are what the download tar carries to the rewrite and compile steps.

type modulePatch struct {
	patchFile string
	file      *gitdiff.File
	name      string // path within the module patched
	module    string
}

// applyPatches applies the patch files to the modules they name. dir is the
// main module's directory; env the go environment of the download step. It
// returns, per module path, the patch files (as given) that changed it.
func applyPatches(dir string, env []string, patchFiles []string) (map[string][]string, error) {
	if len(patchFiles) == 0 {
		return nil, nil
	}
	var all []*gitdiff.File
	var origin, originPath []string
	for _, pf := range patchFiles {
		data, err := os.ReadFile(pf)
		if err != nil {
			return nil, cli.Errorf("E_PATCH", "%s: %v", pf, err)
		}
		files, _, err := gitdiff.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, cli.Errorf("E_PATCH", "%s: not a unified diff: %v", filepath.Base(pf), err)
		}
		if len(files) == 0 {
			return nil, cli.Errorf("E_PATCH", "%s: holds no file changes", filepath.Base(pf))
		}
		for _, f := range files {
			for _, name := range []string{f.OldName, f.NewName} {
				if name != "" && !cleanRelative(name) {
					return nil, cli.Errorf("E_PATCH", "%s: file name %q is not a clean relative path (no '..', '.', empty or absolute elements); name files <module path>/<file in module>", filepath.Base(pf), name)
				}
			}
			if problem := patchFileProblem(f); problem != "" {
				return nil, cli.Errorf("E_PATCH", "%s: %s: %s", filepath.Base(pf), patchName(f), problem)
			}
			all = append(all, f)
			origin = append(origin, filepath.Base(pf))
			originPath = append(originPath, pf)
		}
	}

	// The build list maps file names to modules (longest module path wins,
	// so a nested module such as go.etcd.io/etcd/server/v3 beats go.etcd.io/etcd).
	out, _, err := cli.Run(dir, env, gotool.Binary(), "list", "-m", "-f", "{{.Path}}", "all")
	if err != nil {
		return nil, gotool.ClassifyError("E_DOWNLOAD", err)
	}
	var modules []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := strings.TrimSpace(sc.Text()); m != "" {
			modules = append(modules, m)
		}
	}
	sort.Slice(modules, func(i, j int) bool { return len(modules[i]) > len(modules[j]) })

	var patches []modulePatch
	byModule := map[string][]string{}
	for i, f := range all {
		if f.IsBinary || f.IsRename || f.IsCopy {
			return nil, cli.Errorf("E_PATCH", "%s: %s: only text changes to existing or new files are supported", origin[i], f.NewName)
		}
		name := f.NewName
		if f.IsDelete {
			name = f.OldName
		}
		mod := ""
		for _, m := range modules {
			if strings.HasPrefix(name, m+"/") {
				mod = m
				break
			}
		}
		if mod == "" {
			return nil, cli.Errorf("E_PATCH", "%s: %s does not start with the path of a module in go.mod's build list; name files <module path>/<file in module>", origin[i], name)
		}
		patches = append(patches, modulePatch{origin[i], f, strings.TrimPrefix(name, mod+"/"), mod})
		if ps := byModule[mod]; len(ps) == 0 || ps[len(ps)-1] != originPath[i] {
			byModule[mod] = append(ps, originPath[i])
		}
	}

	dirs := map[string]string{}
	for mod := range byModule {
		out, _, err := cli.Run(dir, env, gotool.Binary(), "mod", "download", "-json", mod)
		if err != nil {
			return nil, gotool.ClassifyError("E_DOWNLOAD", err)
		}
		var info struct{ Path, Version, Dir, Error string }
		if err := json.Unmarshal([]byte(out), &info); err != nil || info.Dir == "" {
			return nil, cli.Errorf("E_DOWNLOAD", "module %s: %s", mod, info.Error)
		}
		dirs[mod] = info.Dir
		fmt.Fprintf(os.Stderr, "k4s: patching %s@%s\n", info.Path, info.Version)
	}

	for _, p := range patches {
		target := filepath.Join(dirs[p.module], filepath.FromSlash(p.name))
		if !cli.Within(dirs[p.module], target) {
			return nil, cli.Errorf("E_PATCH", "%s: %s/%s is outside the module", p.patchFile, p.module, p.name)
		}
		var src []byte
		if !p.file.IsNew {
			if fi, err := os.Lstat(target); err == nil && !fi.Mode().IsRegular() {
				return nil, cli.Errorf("E_PATCH", "%s: %s/%s is not a regular file of the module", p.patchFile, p.module, p.name)
			}
			src, err = os.ReadFile(target)
			if err != nil {
				return nil, cli.Errorf("E_PATCH", "%s: %s/%s: %v", p.patchFile, p.module, p.name, err)
			}
		} else if _, err := os.Lstat(target); err == nil {
			return nil, cli.Errorf("E_PATCH", "%s creates %s/%s, which the module already has", p.patchFile, p.module, p.name)
		}
		var dst bytes.Buffer
		if err := gitdiff.Apply(&dst, bytes.NewReader(src), p.file); err != nil {
			return nil, cli.Errorf("E_PATCH", "%s does not apply to %s/%s at the version go.mod pins: %v", p.patchFile, p.module, p.name, err)
		}
		if err := writePatched(target, p.file.IsDelete, dst.Bytes()); err != nil {
			// E.g. a new file below a file of the module (echo.go/x.go).
			return nil, cli.Errorf("E_PATCH", "%s cannot write %s/%s: %v", p.patchFile, p.module, p.name, err)
		}
	}
	return byModule, nil
}

// writePatched writes (or deletes) one patched file of the module cache, whose
// directories are read-only.
func writePatched(target string, del bool, content []byte) error {
	if err := os.Chmod(filepath.Dir(target), 0o755); err != nil && !os.IsNotExist(err) {
		return err
	}
	if del {
		return os.Remove(target)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(target+".k4s-tmp", content, 0o644); err != nil {
		return err
	}
	return os.Rename(target+".k4s-tmp", target)
}

func patchName(f *gitdiff.File) string {
	if f.NewName != "" {
		return f.NewName
	}
	return f.OldName
}

// patchFileProblem is why a file change of a patch cannot be applied as it says,
// or "": module files are regular text files unpacked 0644, so a symlink (git
// mode 120000), a submodule (160000) or a change of mode would be applied as
// something else (a link as a .go file holding its target) or not at all.
func patchFileProblem(f *gitdiff.File) string {
	for _, m := range []os.FileMode{f.OldMode, f.NewMode} {
		if m != 0 && m&0o170000 != 0o100000 {
			return fmt.Sprintf("git mode %o is not a regular file (a symlink or submodule); only changes to regular files are supported", m)
		}
	}
	if f.OldMode != 0 && f.NewMode != 0 && f.OldMode != f.NewMode {
		return fmt.Sprintf("changes the file mode (%o -> %o), which k4s does not apply (module files are unpacked 0644); drop the mode change from the patch", f.OldMode, f.NewMode)
	}
	if !f.IsNew && !f.IsDelete && len(f.TextFragments) == 0 && !f.IsBinary {
		return "changes nothing k4s applies (no text hunks)"
	}
	return ""
}

// cleanRelative reports whether a patch's file name is a plain relative path:
// no empty, ".", or ".." elements and not absolute, so that joined onto a
// module directory it stays inside it.
func cleanRelative(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return false
	}
	for _, e := range strings.Split(name, "/") {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}
