package gotool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k4s.dev/tools/k4stool/internal/cli"
)

func TestEnvKeepsTheSandbox(t *testing.T) {
	t.Setenv("GOROOT", "__k4s_go")
	t.Setenv("GOCACHE", ".cache/go")
	t.Setenv("GOCACHEPROG", "/elsewhere/prog")
	t.Setenv(GocacheRemoteEnv, "")
	env, err := Env("/sandbox", "EXTRA=1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for k, want := range map[string]string{
		"GOROOT": "/sandbox/__k4s_go", "GOCACHE": "/sandbox/.cache/go", "PATH": "/sandbox/__k4s_go/bin",
		"GOENV": "off", "GOTOOLCHAIN": "local", "GOWORK": "off", "CGO_ENABLED": "0", "EXTRA": "1",
	} {
		if got[k] != want {
			t.Errorf("%s=%q, want %q", k, got[k], want)
		}
	}
	if _, ok := got["GOCACHEPROG"]; ok {
		t.Errorf("GOCACHEPROG from outside kept: %q", got["GOCACHEPROG"])
	}
	t.Setenv("GOROOT", "")
	if _, err := Env("/sandbox"); cli.Code(err) != "E_NO_GO" {
		t.Errorf("no GOROOT: %v", err)
	}
}

func TestFlagsWithout(t *testing.T) {
	t.Setenv("GOFLAGS", "-mod=mod -modcacherw -trimpath")
	if got := FlagsWithout("-mod="); got != "-modcacherw -trimpath" {
		t.Errorf("FlagsWithout = %q", got)
	}
}

func TestClassifyError(t *testing.T) {
	for msg, want := range map[string]string{
		"go: missing go.sum entry for module providing package x": "E_GOSUM_MISSING",
		"verifying x: checksum mismatch":                          "E_CHECKSUM",
		"zip: not a valid zip file":                               "E_MODCACHE",
		"go: connection refused":                                  "E_DOWNLOAD",
	} {
		if got := cli.Code(ClassifyError("E_DOWNLOAD", errors.New(msg))); got != want {
			t.Errorf("%q: %s, want %s", msg, got, want)
		}
	}
}

// With the shared build cache on, GOCACHEPROG is the k4s_gocache k4stool named by
// K4S_GOCACHE_PROG (relative to the sandbox), never this process: the step tool
// has no gocache subcommand. Without that tool in the sandbox the step fails coded.
func TestCacheProgIsTheGocacheTool(t *testing.T) {
	work := t.TempDir()
	t.Setenv("GOROOT", "__k4s_go")
	t.Setenv("GOCACHE", ".cache/go")
	t.Setenv(GocacheRemoteEnv, "grpc://cache:50051")
	t.Setenv(GocacheInstanceEnv, "main")
	t.Setenv(GocacheProgEnv, "")
	if _, err := Env(work); cli.Code(err) != "E_USAGE" || !strings.Contains(err.Error(), GocacheProgEnv) {
		t.Fatalf("no %s: %v", GocacheProgEnv, err)
	}
	t.Setenv(GocacheProgEnv, "__k4s_tools/k4stool-gocache")
	if _, err := Env(work); cli.Code(err) != "E_USAGE" || !strings.Contains(err.Error(), "not in the sandbox") {
		t.Fatalf("tool missing: %v", err)
	}
	prog := filepath.Join(work, "__k4s_tools", "k4stool-gocache")
	os.MkdirAll(filepath.Dir(prog), 0o755)
	os.WriteFile(prog, []byte("\x7fELF"), 0o755)
	env, err := Env(work)
	if err != nil {
		t.Fatal(err)
	}
	want := "GOCACHEPROG=" + prog + " gocache -dir=" + filepath.Join(work, ".cache/go") + " -remote=grpc://cache:50051 -instance=main"
	n := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, GocacheProgEnv+"=") || strings.HasPrefix(kv, GocacheRemoteEnv+"=") {
			t.Errorf("passed on to the go command: %s", kv)
		}
		if strings.HasPrefix(kv, "GOCACHEPROG=") {
			n++
			if kv != want {
				t.Errorf("%s, want %s", kv, want)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d GOCACHEPROG lines in %q", n, env)
	}
}
