//go:build !k4s_download

package rewrite

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"k4s.dev/tools/k4stool/internal/archive"
	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"
)

// CmdCommands rewrites a group of commands (rewrite-plan's groups: those of
// one Go module) into bb packages: their own files (rewrite-plan's tars of
// them) over the dependencies' tree (rewrite-deps'), type-checked against the
// dependencies' export data and rewritten by gobusybox's bbinternal
// (bbgen.go). Each command's output tar (-outdir/NAME.tar) holds only its own
// files, rewritten: the compile step joins them with the others.
func CmdCommands(args []string) error {
	fs := cli.NewFlags("rewrite-commands")
	depsTar := fs.String("deps", "deps.tar", "the dependencies' tree from `k4stool rewrite-deps`")
	group := fs.String("group", "group.json", "the commands (path, name, kind, source tar), from `k4stool rewrite-plan`")
	depList := fs.String("deplist", "deps.txt", "every package in -deps, one a line (from `k4stool rewrite-plan`)")
	needs := fs.String("needs", "group.deps", "the packages of -deps the commands import, directly or not, one a line (from `k4stool rewrite-plan`)")
	outDir := fs.String("outdir", "out", "output directory: one tar per command, NAME.tar")
	var tags cli.MultiFlag
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	if err := fs.Parse(args, cli.NoArgs); err != nil {
		return err
	}
	work := cli.MustAbs(".")
	for _, p := range []string{*depsTar, *group, *depList, *needs, *outDir} {
		if !cli.Within(work, p) {
			return cli.Errorf("E_BAD_PATH", "-deps, -group, -deplist, -needs and -outdir must be inside the working directory")
		}
	}
	var cmds []plannedCommand
	data, err := os.ReadFile(*group)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &cmds); err != nil {
		return cli.Errorf("E_INTERNAL", "%s: %v", *group, err)
	}
	own := make([][]string, len(cmds))
	paths := make([]string, len(cmds))
	for i, c := range cmds {
		if c.Path == "" || path.Clean(c.Path) != c.Path || strings.HasPrefix(c.Path, "/") || strings.HasPrefix(c.Path, ".") || !commandName.MatchString(c.Name) {
			return cli.Errorf("E_USAGE", "%s: %q and %q must be a package path and a command name", *group, c.Path, c.Name)
		}
		if !cli.Within(work, c.Src) {
			return cli.Errorf("E_BAD_PATH", "%s: the source tar %s must be inside the working directory", *group, c.Src)
		}
		files, err := tarFiles(c.Src)
		if err != nil {
			return err
		}
		prefix := "src/" + c.Path + "/"
		for _, f := range files {
			if !strings.HasPrefix(f, prefix) {
				return cli.Errorf("E_INTERNAL", "%s: %s is not under %s", c.Src, f, prefix)
			}
		}
		own[i], paths[i] = files, c.Path
	}
	gen, orig := filepath.Join(work, "gen"), filepath.Join(work, "orig")
	// Of the dependencies' tree, only the commands' own: a Kubernetes command
	// needs a part of the tree, u-root's a small one.
	keep, err := depsKeep(*depList, *needs)
	if err != nil {
		return err
	}
	if err := archive.UnpackTreeKeep(*depsTar, gen, keep); err != nil {
		return err
	}
	for _, c := range cmds {
		for _, dir := range []string{gen, orig} {
			if err := archive.UnpackTree(c.Src, dir); err != nil {
				return err
			}
		}
	}
	gopathEnv, err := gotool.Env(work,
		"GOPATH="+gen,
		"GO111MODULE=off",
		"GOFLAGS="+gotool.FlagsWithout("-mod=", "-modcacherw"),
	)
	if err != nil {
		return err
	}
	// go/packages finds the go command through this process's PATH.
	gotool.SetProcessEnv(gopathEnv)
	// All of the group type-checked at once (one `go list -export`, which
	// hashes the dependencies once), as pkg/bb loads all commands; then each
	// rewritten from its own syntax and types.
	pkgs, err := loadCommands(gopathEnv, tags, gen, paths)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	for i, c := range cmds {
		if err := rewriteCommand(pkgs[i], gen, orig, c); err != nil {
			return err
		}
		set := map[string]bool{}
		for _, f := range own[i] {
			set[f] = true
		}
		if _, err := archive.PackFiles(gen, filepath.Join(*outDir, c.Name+".tar"), set); err != nil {
			return err
		}
	}
	return nil
}

// depsKeep selects the files of the dependencies' tree that belong to the
// packages in the needs file: those in a needed package's directory, and
// those below it (embedded files) that are not in another package's.
func depsKeep(depList, needs string) (func(string) bool, error) {
	all, err := readLines(depList)
	if err != nil {
		return nil, err
	}
	need, err := readLines(needs)
	if err != nil {
		return nil, err
	}
	return func(name string) bool {
		rel, ok := strings.CutPrefix(name, "src/")
		if !ok {
			return false
		}
		for d := path.Dir(rel); d != "." && d != "/"; d = path.Dir(d) {
			if need[d] {
				return true
			}
			if all[d] {
				return false
			}
		}
		return false
	}, nil
}

// readLines reads a file of words, one a line, as a set.
func readLines(file string) (map[string]bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, w := range strings.Fields(string(data)) {
		set[w] = true
	}
	return set, nil
}

// tarFiles lists the regular files of a tar packTree wrote.
func tarFiles(tarPath string) ([]string, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	var files []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tarPath, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			files = append(files, path.Clean(hdr.Name))
		}
	}
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
