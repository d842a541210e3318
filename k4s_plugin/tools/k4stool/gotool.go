package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goEnv returns the environment for a go subprocess: the sandbox environment
// that Pants passed (GOPROXY, GOSUMDB, GOFLAGS, ... as configured in the
// [k4s-go] subsystem) plus settings that keep the go command away from
// everything that is not a declared input.
func goEnv(work string, extra ...string) ([]string, error) {
	goroot := sandboxPath(work, os.Getenv("GOROOT"))
	if goroot == "" {
		return nil, errorf("E_NO_GO", "GOROOT is not set in the sandbox")
	}
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "GOENV", "GOTOOLCHAIN", "GOTELEMETRY", "GOWORK", "GOPATH", "GOMODCACHE", "GO111MODULE", "CGO_ENABLED", "GOROOT", "GOCACHE",
			"GOCACHEPROG", gocacheRemoteEnv, gocacheInstanceEnv:
			continue
		}
		env = append(env, kv)
	}
	gocache := sandboxPath(work, os.Getenv("GOCACHE"))
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
	if prog, err := goCacheProg(gocache); err != nil {
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
	gocacheRemoteEnv   = "K4S_GOCACHE_REMOTE"
	gocacheInstanceEnv = "K4S_GOCACHE_INSTANCE"
)

// goCacheProg is the GOCACHEPROG command line (split by the go command as
// cmd/internal/quoted does: spaces separate, a field may be quoted), or "".
func goCacheProg(gocache string) (string, error) {
	remote := os.Getenv(gocacheRemoteEnv)
	if remote == "" {
		return "", nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	args := []string{exe, "gocache", "-dir=" + gocache, "-remote=" + remote}
	if inst := os.Getenv(gocacheInstanceEnv); inst != "" {
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
			return "", errorf("E_BAD_PATH", "%q cannot be quoted for GOCACHEPROG", a)
		}
	}
	return strings.Join(args, " "), nil
}

// setProcessEnv makes env (KEY=value lines; a later line wins) this process's
// environment, for libraries that read os.Environ() (gobusybox's).
func setProcessEnv(env []string) {
	os.Clearenv()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
}

// goFlagsWithout returns GOFLAGS from the environment minus flags that
// start with any of the given prefixes.
func goFlagsWithout(prefixes ...string) string {
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

func goBinary() string {
	return filepath.Join(sandboxPath(mustAbs("."), os.Getenv("GOROOT")), "bin", "go")
}

// sandboxPath makes a path from the step's environment absolute: the plugin passes
// paths relative to the sandbox (GOROOT=__k4s_go, GOCACHE=.cache/kuties_go_build),
// because Pants fills in {chroot} only for steps it runs on this machine, not for
// remote executors; the go command wants them absolute.
func sandboxPath(work, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(work, p)
}

// run runs a command, streaming its stderr to ours and also returning it.
func run(dir string, env []string, name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		fatalf("E_INTERNAL", "%v", err)
	}
	return a
}
