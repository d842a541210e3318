//go:build !k4s_download

package download

import (
	"os"
	"path/filepath"
	"testing"
)

// The modules list the SBOM is made from: sorted by path, each with go.sum's
// content hash (not the /go.mod line's), patches per module, and an empty sum
// for a module replaced by a local directory.
func TestWriteModulesJSON(t *testing.T) {
	gosum := []byte("example.com/b v1.2.0 h1:BBB=\n" +
		"example.com/b v1.2.0/go.mod h1:BMOD=\n" +
		"example.com/a v0.1.0/go.mod h1:AMOD=\n" +
		"example.com/a v0.1.0 h1:AAA=\n")
	mods := map[string]bool{"example.com/b@v1.2.0": true, "example.com/a@v0.1.0": true, "example.com/local@": true}
	patched := map[string][]string{"example.com/b": {"__k4s_patches/p/one.patch", "__k4s_patches/p/two.patch"}}
	out := filepath.Join(t.TempDir(), "modules.json")
	if err := writeModulesJSON(out, gosum, mods, patched); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want := `[
 {
  "path": "example.com/a",
  "version": "v0.1.0",
  "sum": "h1:AAA=",
  "patches": []
 },
 {
  "path": "example.com/b",
  "version": "v1.2.0",
  "sum": "h1:BBB=",
  "patches": [
   "__k4s_patches/p/one.patch",
   "__k4s_patches/p/two.patch"
  ]
 },
 {
  "path": "example.com/local",
  "version": "",
  "sum": "",
  "patches": []
 }
]
`
	if string(got) != want {
		t.Errorf("modules.json:\n%s\nwant:\n%s", got, want)
	}
}
