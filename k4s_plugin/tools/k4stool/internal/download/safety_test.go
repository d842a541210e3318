//go:build !k4s_download

package download

// k4stool's own checks on the values it is given (defence in depth behind the
// Pants rules' field checks): no value becomes a flag or a path outside the
// working directory. Run by tests/integration/test_bad_input.py (`go test ./k4stool/...`).

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bluekeyes/go-gitdiff/gitdiff"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"
)

// code is err's stable code, "uncoded: ..." for an error without one, "" for nil.
func code(err error) string {
	if c := cli.Code(err); c != "" {
		return c
	}
	if err != nil {
		return "uncoded: " + err.Error()
	}
	return ""
}

// A patch hunk whose file name climbs out of the module is refused before
// anything is written or deleted.
func TestPatchFileNamesStayInTheModule(t *testing.T) {
	for _, name := range []string{
		"github.com/u-root/u-root/cmds/core/echo/../../../../../../tmp/pwned.txt",
		"/tmp/pwned.txt",
		"github.com/u-root/u-root//cmds/x.go",
		"github.com/u-root/u-root/./x.go",
	} {
		if cleanRelative(name) {
			t.Errorf("cleanRelative(%q) = true", name)
		}
	}
	if !cleanRelative("github.com/u-root/u-root/cmds/core/echo/echo.go") {
		t.Error("a plain module file name was refused")
	}

	dir := t.TempDir()
	patch := filepath.Join(dir, "escape.patch")
	victim := filepath.Join(dir, "victim.txt")
	os.WriteFile(victim, []byte("keep\n"), 0o644)
	// A new-file hunk and a delete hunk, both aimed outside the module.
	body := "--- /dev/null\n+++ b/github.com/u-root/u-root/cmds/core/echo/../../../../../../" + strings.TrimPrefix(dir, "/") + "/pwned.txt\n@@ -0,0 +1 @@\n+pwned\n" +
		"--- a/github.com/u-root/u-root/../../" + strings.TrimPrefix(victim, "/") + "\n+++ /dev/null\n@@ -1 +0,0 @@\n-keep\n"
	os.WriteFile(patch, []byte(body), 0o644)
	files, _, err := gitdiff.Parse(bytes.NewReader([]byte(body)))
	if err != nil || len(files) != 2 {
		t.Fatalf("the test patch does not parse: %v %d", err, len(files))
	}
	_, err = applyPatches(dir, os.Environ(), []string{patch})
	if code(err) != "E_PATCH" || !strings.Contains(err.Error(), "not a clean relative path") {
		t.Fatalf("applyPatches = %v, want E_PATCH naming the file", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned.txt")); err == nil {
		t.Error("the patch wrote outside the module")
	}
	if _, err := os.Stat(victim); err != nil {
		t.Error("the patch deleted a file outside the module")
	}
}

// go.mod `replace` with a directory outside the sandbox (the working directory,
// which holds only files Pants tracks) is refused before the go command reads it;
// one inside it must hold a module (a `local_modules` target's files).
func TestReplaceOutsideTheModuleIsRefused(t *testing.T) {
	setGOROOT(t)
	work := t.TempDir()
	mod := filepath.Join(work, "m")
	os.MkdirAll(filepath.Join(mod, "inside"), 0o755)
	os.WriteFile(filepath.Join(mod, "inside", "go.mod"), []byte("module example.com/x\n"), 0o644)
	os.MkdirAll(filepath.Join(work, "node"), 0o755)
	os.WriteFile(filepath.Join(work, "node", "go.mod"), []byte("module example.com/x\n"), 0o644)
	os.MkdirAll(filepath.Join(work, "empty"), 0o755)
	env, err := gotool.Env(work)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		replace string
		want    string
	}{
		{"example.com/x => ../../etc", "E_REPLACE_OUTSIDE"},
		{"example.com/x => /etc", "E_REPLACE_OUTSIDE"},
		{"example.com/x => ./inside", ""},
		{"example.com/x => ../node", ""},
		{"example.com/x => ../empty", "E_REPLACE_MISSING"},
		{"example.com/x => ../absent", "E_REPLACE_MISSING"},
		{"example.com/x => example.com/y v1.0.0", ""},
	} {
		os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/m\n\ngo 1.24\n\nreplace "+tc.replace+"\n"), 0o644)
		if got := code(checkReplaces(work, mod, env)); got != tc.want {
			t.Errorf("replace %s: got %q, want %q", tc.replace, got, tc.want)
		}
	}
}

// A damaged zip in the module proxy cache gets its own code, whose advice names the
// cache to delete (the rules' E_MODCACHE fix), not a generic download failure.
func TestCheckModcacheDamage(t *testing.T) {
	err := gotool.ClassifyError("E_DOWNLOAD", errors.New("go: github.com/x/y@v1.0.0: zip: not a valid zip file"))
	if code(err) != "E_MODCACHE" {
		t.Errorf("classifyGoError = %v, want E_MODCACHE", err)
	}
	if got := code(gotool.ClassifyError("E_DOWNLOAD", errors.New("go: connection refused"))); got != "E_DOWNLOAD" {
		t.Errorf("a network error became %s", got)
	}
}

// A patch that creates a symlink, a submodule, or changes only a mode is refused
// (it was applied as a regular .go file holding the link's target, or ignored);
// the file name it names is in the message.
func TestPatchRefusesLinksAndModes(t *testing.T) {
	const f = "github.com/u-root/u-root/cmds/core/echo/link.go"
	for body, want := range map[string]string{
		"diff --git a/" + f + " b/" + f + "\nnew file mode 120000\n--- /dev/null\n+++ b/" + f + "\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n": "git mode 120000",
		"diff --git a/" + f + " b/" + f + "\nnew file mode 160000\n--- /dev/null\n+++ b/" + f + "\n@@ -0,0 +1 @@\n+Subproject commit 1\n":                       "git mode 160000",
		"diff --git a/" + f + " b/" + f + "\nold mode 100644\nnew mode 100755\n":                                                                                "changes the file mode (100644 -> 100755)",
	} {
		files, _, err := gitdiff.Parse(strings.NewReader(body))
		if err != nil || len(files) != 1 {
			t.Fatalf("the test patch does not parse: %v %d", err, len(files))
		}
		if got := patchFileProblem(files[0]); !strings.Contains(got, want) {
			t.Errorf("patchFileProblem(%q) = %q, want %q", body, got, want)
		}
		dir := t.TempDir()
		pf := filepath.Join(dir, "x.patch")
		os.WriteFile(pf, []byte(body), 0o644)
		_, err = applyPatches(dir, os.Environ(), []string{pf})
		if code(err) != "E_PATCH" || !strings.Contains(err.Error(), "x.patch: "+f) {
			t.Errorf("applyPatches = %v, want E_PATCH naming x.patch and %s", err, f)
		}
	}
	ok := "--- a/" + f + "\n+++ b/" + f + "\n@@ -1 +1 @@\n-a\n+b\n"
	files, _, _ := gitdiff.Parse(strings.NewReader(ok))
	if got := patchFileProblem(files[0]); got != "" {
		t.Errorf("a text change was refused: %s", got)
	}
}

// A patch whose new file lies below a file of the module (echo.go/x.go) fails as
// E_PATCH naming the patch, not as an internal error.
func TestWritePatchedBelowAFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "echo.go"), []byte("package main\n"), 0o644)
	if err := writePatched(filepath.Join(dir, "echo.go", "x.go"), false, []byte("x")); err == nil {
		t.Fatal("writePatched below a file succeeded")
	}
}

// A package resolution failure that names a patched module is the patch's
// (E_PATCH_IMPORTS, naming the patch file), not go.sum's or the commands'.
func TestBlamePatches(t *testing.T) {
	patched := map[string][]string{"github.com/u-root/u-root": {"distros/patches/echo.patch"}}
	err := blamePatches(cli.Errorf("E_GOSUM_MISSING", "missing go.sum entry for module providing package example.com/new (imported by github.com/u-root/u-root/cmds/core/echo)"), patched)
	if code(err) != "E_PATCH_IMPORTS" || !strings.Contains(err.Error(), "distros/patches/echo.patch") {
		t.Errorf("blamePatches = %v, want E_PATCH_IMPORTS naming the patch", err)
	}
	other := cli.Errorf("E_GOSUM_MISSING", "missing go.sum entry for module providing package example.com/new (imported by example.com/other)")
	if err := blamePatches(other, patched); code(err) != "E_GOSUM_MISSING" {
		t.Errorf("an error naming no patched module was re-coded: %v", err)
	}
	if err := blamePatches(cli.Errorf("E_COMPILE", "github.com/u-root/u-root/x"), patched); code(err) != "E_COMPILE" {
		t.Errorf("a compile error was re-coded: %v", err)
	}
}

// A glob that selects nothing is named (it was reported as go.sum missing every
// module under its directory); go.sum errors count only for the selected
// commands and their dependencies.
func TestSelectedPackages(t *testing.T) {
	const core = "github.com/u-root/u-root/cmds/core/"
	roots := []listedRoot{
		{core + "echo", []string{"fmt", "example.com/flag"}},
		{core + "ls", []string{"example.com/unpinned"}},
		{core + "elvish", []string{"example.com/big"}},
	}
	sel, unmatched := selectedPackages(roots, []string{core + "e*", "-" + core + "elvish"})
	if len(unmatched) != 0 || !sel[core+"echo"] || !sel["example.com/flag"] || sel[core+"ls"] || sel["example.com/unpinned"] || sel[core+"elvish"] {
		t.Errorf("selectedPackages = %v, %v", sel, unmatched)
	}
	if _, unmatched := selectedPackages(roots, []string{core + "nosuch*"}); len(unmatched) != 1 {
		t.Errorf("a glob that matches nothing was not named: %v", unmatched)
	}
	if sel, _ := selectedPackages(roots, []string{core + "ls"}); !sel["example.com/unpinned"] {
		t.Errorf("an explicit command's dependencies were not selected: %v", sel)
	}
	if sel, _ := selectedPackages(roots, []string{"github.com/u-root/u-root/cmds/..."}); !sel[core+"ls"] {
		t.Errorf("a ... pattern selected nothing: %v", sel)
	}
}
