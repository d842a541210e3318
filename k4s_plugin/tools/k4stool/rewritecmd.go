//go:build !k4s_download

package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

func init() { subcommands["rewrite-command"] = rewriteCommandStep }

// rewriteCommandStep rewrites one command into a bb package: its own files
// (rewrite-plan's tar of them) over the dependencies' tree (rewrite-deps'),
// type-checked alone against the dependencies' export data and rewritten by
// gobusybox's bbinternal (bbgen.go). The output tar holds only the command's
// files, rewritten: the compile step joins it with the others.
func rewriteCommandStep(args []string) error {
	fs := flag.NewFlagSet("rewrite-command", flag.ExitOnError)
	depsTar := fs.String("deps", "deps.tar", "the dependencies' tree from `k4stool rewrite-deps`")
	srcTar := fs.String("src", "cmd.tar", "the command's own files from `k4stool rewrite-plan`")
	pkg := fs.String("pkg", "", "the command's package path")
	name := fs.String("name", "", "the command's name")
	kind := fs.String("kind", kindPlain, "plain, renamed or fixliteral (see planCommands)")
	out := fs.String("out", "out.tar", "output tar of the rewritten command")
	var tags multiFlag
	fs.Var(&tags, "tag", "Go build tag (repeatable)")
	fs.Parse(args)
	work := mustAbs(".")
	if !within(work, *depsTar) || !within(work, *srcTar) || !within(work, *out) {
		return errorf("E_BAD_PATH", "-deps, -src and -out must be inside the working directory")
	}
	if *pkg == "" || path.Clean(*pkg) != *pkg || strings.HasPrefix(*pkg, "/") || strings.HasPrefix(*pkg, ".") || !commandName.MatchString(*name) {
		return errorf("E_USAGE", "-pkg %q and -name %q must be a package path and a command name", *pkg, *name)
	}
	gen, orig := filepath.Join(work, "gen"), filepath.Join(work, "orig")
	files, err := tarFiles(*srcTar)
	if err != nil {
		return err
	}
	prefix := "src/" + *pkg + "/"
	for _, f := range files {
		if !strings.HasPrefix(f, prefix) {
			return errorf("E_INTERNAL", "%s: %s is not under %s", *srcTar, f, prefix)
		}
	}
	for _, step := range []struct{ tar, dir string }{{*depsTar, gen}, {*srcTar, gen}, {*srcTar, orig}} {
		if err := unpackTree(step.tar, step.dir); err != nil {
			return err
		}
	}
	gopathEnv, err := goEnv(work,
		"GOPATH="+gen,
		"GO111MODULE=off",
		"GOFLAGS="+goFlagsWithout("-mod=", "-modcacherw"),
	)
	if err != nil {
		return err
	}
	// go/packages finds the go command through this process's PATH.
	setProcessEnv(gopathEnv)
	c := plannedCommand{Path: *pkg, Name: *name, Kind: *kind}
	if err := rewriteCommand(gopathEnv, tags, gen, orig, c); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, f := range files {
		keep[f] = true
	}
	if _, err := packFiles(gen, *out, keep); err != nil {
		return err
	}
	return nil
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
