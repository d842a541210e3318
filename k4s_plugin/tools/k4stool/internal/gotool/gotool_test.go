package gotool

import (
	"errors"
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
