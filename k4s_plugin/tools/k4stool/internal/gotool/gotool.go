package gotool

import (
	"os"
	"path/filepath"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
)

// Env returns the environment for a go subprocess: the sandbox environment
// that Pants passed (GOPROXY, GOSUMDB, GOFLAGS, ... as configured in the
// [k4s-go] subsystem) plus settings that keep the go command away from
// everything that is not a declared input.
func Env(work string, extra ...string) ([]string, error) {
	goroot := SandboxPath(work, os.Getenv("GOROOT"))
	if goroot == "" {
		return nil, cli.Errorf("E_NO_GO", "GOROOT is not set in the sandbox")
	}
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "GOENV", "GOTOOLCHAIN", "GOTELEMETRY", "GOWORK", "GOPATH", "GOMODCACHE", "GO111MODULE", "CGO_ENABLED", "GOROOT", "GOCACHE",
			"GOCACHEPROG", GocacheRemoteEnv, GocacheInstanceEnv:
			continue
		}
		env = append(env, kv)
	}
	gocache := SandboxPath(work, os.Getenv("GOCACHE"))
	if gocache == "" {
		gocache = filepath.Join(work, ".gocache")
	}
	env = append(env,
		"GOROOT="+goroot,
		"GOCACHE="+gocache,
		"PATH="+filepath.Join(goroot, "bin"),
		"HOME="+filepath.Join(work, ".home"),
		"GOENV=off",
		"GOTOOLCHAIN=local",
		"GOTELEMETRY=off",
		"GOWORK=off",
		"CGO_ENABLED=0",
	)
	if prog, err := cacheProg(gocache); err != nil {
		return nil, err
	} else if prog != "" {
		env = append(env, "GOCACHEPROG="+prog)
	}
	return append(env, extra...), nil
}

// The step env vars that turn on the shared build cache ([k4s-go].shared_build_cache):
// the go command then runs `k4stool gocache` as its GOCACHEPROG (gocache.go), with
// GOCACHE as its local layer.
const (
	GocacheRemoteEnv   = "K4S_GOCACHE_REMOTE"
	GocacheInstanceEnv = "K4S_GOCACHE_INSTANCE"
)

// cacheProg is the GOCACHEPROG command line (split by the go command as
// cmd/internal/quoted does: spaces separate, a field may be quoted), or "".
func cacheProg(gocache string) (string, error) {
	remote := os.Getenv(GocacheRemoteEnv)
	if remote == "" {
		return "", nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	args := []string{exe, "gocache", "-dir=" + gocache, "-remote=" + remote}
	if inst := os.Getenv(GocacheInstanceEnv); inst != "" {
		args = append(args, "-instance="+inst)
	}
	for i, a := range args {
		switch {
		case !strings.ContainsAny(a, " \t\n'\""):
		case !strings.Contains(a, "'"):
			args[i] = "'" + a + "'"
		case !strings.Contains(a, `"`):
			args[i] = `"` + a + `"`
		default:
			return "", cli.Errorf("E_BAD_PATH", "%q cannot be quoted for GOCACHEPROG", a)
		}
	}
	return strings.Join(args, " "), nil
}

// SetProcessEnv makes env (KEY=value lines; a later line wins) this process's
// environment, for libraries that read os.Environ() (gobusybox's).
func SetProcessEnv(env []string) {
	os.Clearenv()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
}

// FlagsWithout returns GOFLAGS from the environment minus flags that
// start with any of the given prefixes.
func FlagsWithout(prefixes ...string) string {
	var keep []string
	for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
		drop := false
		for _, p := range prefixes {
			if strings.HasPrefix(f, p) {
				drop = true
			}
		}
		if !drop {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

// Binary is the go command of the sandbox's GOROOT.
func Binary() string {
	return filepath.Join(SandboxPath(cli.MustAbs("."), os.Getenv("GOROOT")), "bin", "go")
}

// SandboxPath makes a path from the step's environment absolute: the plugin passes
// paths relative to the sandbox (GOROOT=__k4s_go, GOCACHE=.cache/kuties_go_build),
// because Pants fills in {chroot} only for steps it runs on this machine, not for
// remote executors; the go command wants them absolute.
func SandboxPath(work, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(work, p)
}

// ClassifyError maps go command failures to stable codes.
func ClassifyError(fallback string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "missing go.sum entry"):
		return cli.Errorf("E_GOSUM_MISSING", "%s", msg)
	case strings.Contains(msg, "SECURITY ERROR") || strings.Contains(msg, "checksum mismatch"):
		return cli.Errorf("E_CHECKSUM", "%s", msg)
	case strings.Contains(msg, "not a valid zip file") || strings.Contains(msg, "zip: "):
		return cli.Errorf("E_MODCACHE", "%s", msg)
	case strings.Contains(msg, "no required module provides package"),
		strings.Contains(msg, "cannot find module providing package"),
		strings.Contains(msg, "is not in std"),
		strings.Contains(msg, "matched no packages"),
		strings.Contains(msg, "cannot find package"),
		strings.Contains(msg, "is not in GOROOT"):
		return cli.Errorf("E_UNKNOWN_PACKAGE", "%s", msg)
	case strings.Contains(msg, "pattern ") && strings.Contains(msg, ": no matching files found"):
		// A first-party //go:embed whose files the target's `sources` leave out.
		return cli.Errorf("E_EMBED", "%s", msg)
	case strings.Contains(msg, "build constraints exclude all Go files"):
		// A package the commands import (first-party or not) has no files for this
		// platform and tags; with CGO_ENABLED=0, files that import "C" are excluded.
		return cli.Errorf("E_BUILD_CONSTRAINTS", "%s", msg)
	}
	return cli.Errorf(fallback, "%s", msg)
}
