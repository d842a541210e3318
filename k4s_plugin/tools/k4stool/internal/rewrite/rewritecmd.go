//go:build !k4s_download

package rewrite

import (
	"archive/tar"
	"bufio"
	"bytes"
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

// CmdCommand rewrites one command into a bb package: its own files
// (rewrite-plan's tar of them) over the dependencies' tree (rewrite-deps'),
// type-checked alone against the dependencies' export data and rewritten by
// gobusybox's bbinternal (bbgen.go). The output tar holds only the command's
// files, rewritten: the compile step joins it with the others.
func CmdCommand(args []string) error {
	fs := cli.NewFlags("rewrite-command")
	depsTar := fs.String("deps", "deps.tar", "the dependencies' tree from `k4stool rewrite-deps`")
	srcTar := fs.String("src", "cmd.tar", "the command's own files from `k4stool rewrite-plan`")
	depList := fs.String("deplist", "deps.txt", "every package in -deps, one a line (from `k4stool rewrite-plan`)")
	needs := fs.String("needs", "cmd.deps", "the packages of -deps the command imports, directly or not, one a line (from `k4stool rewrite-plan`)")
	pkg := fs.String("pkg", "", "the command's package path")
	name := fs.String("name", "", "the command's name")
	kind := fs.String("kind", kindPlain, "plain, renamed or fixliteral (see planCommands)")
	out := fs.String("out", "out.tar", "output tar of the rewritten command")
	var tags cli.MultiFlag
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	if err := fs.Parse(args, cli.NoArgs); err != nil {
		return err
	}
	work := cli.MustAbs(".")
	for _, p := range []string{*depsTar, *srcTar, *depList, *needs, *out} {
		if !cli.Within(work, p) {
			return cli.Errorf("E_BAD_PATH", "-deps, -src, -deplist, -needs and -out must be inside the working directory")
		}
	}
	if *pkg == "" || path.Clean(*pkg) != *pkg || strings.HasPrefix(*pkg, "/") || strings.HasPrefix(*pkg, ".") || !commandName.MatchString(*name) {
		return cli.Errorf("E_USAGE", "-pkg %q and -name %q must be a package path and a command name", *pkg, *name)
	}
	gen, orig := filepath.Join(work, "gen"), filepath.Join(work, "orig")
	files, err := tarFiles(*srcTar)
	if err != nil {
		return err
	}
	prefix := "src/" + *pkg + "/"
	for _, f := range files {
		if !strings.HasPrefix(f, prefix) {
			return cli.Errorf("E_INTERNAL", "%s: %s is not under %s", *srcTar, f, prefix)
		}
	}
	// Of the dependencies' tree, only the command's own: a Kubernetes command
	// needs a part of the tree, u-root's a small one.
	keep, err := depsKeep(*depList, *needs)
	if err != nil {
		return err
	}
	if err := archive.UnpackTreeKeep(*depsTar, gen, keep); err != nil {
		return err
	}
	for _, dir := range []string{gen, orig} {
		if err := archive.UnpackTree(*srcTar, dir); err != nil {
			return err
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
	c := plannedCommand{Path: *pkg, Name: *name, Kind: *kind}
	if err := rewriteCommand(gopathEnv, tags, gen, orig, c); err != nil {
		return err
	}
	own := map[string]bool{}
	for _, f := range files {
		own[f] = true
	}
	if _, err := archive.PackFiles(gen, *out, own); err != nil {
		return err
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
