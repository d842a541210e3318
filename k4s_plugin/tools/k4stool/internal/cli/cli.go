// Package cli is what every k4stool subcommand shares: errors with a stable
// code (`k4s: E_...`) that the Pants rules match on, repeatable flags, the
// checks that keep a value from turning into a flag or a path outside the
// sandbox, running a command, and writing a file atomically.
package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// MultiFlag is a repeatable string flag.
type MultiFlag []string

func (m *MultiFlag) String() string     { return strings.Join(*m, ",") }
func (m *MultiFlag) Set(v string) error { *m = append(*m, v); return nil }

// CodedError is an error with a stable code that the Pants rules match on.
type CodedError struct {
	Code string
	Msg  string
}

func (e *CodedError) Error() string { return e.Code + ": " + e.Msg }

// Code is err's stable code (E_...), or "" for an error without one.
func Code(err error) string {
	var ce *CodedError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}

// Errorf is an error with a stable code.
func Errorf(code, format string, args ...any) error {
	return &CodedError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func Fatalf(code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// Sandbox paths mean nothing to the user: show paths relative to it.
	if wd, err := os.Getwd(); err == nil {
		msg = strings.ReplaceAll(msg, wd+"/", "")
	}
	fmt.Fprintf(os.Stderr, "k4s: %s: %s\n", code, msg)
	os.Exit(1)
}

// Command patterns are Go import paths (elements of letters, digits and
// -._~+, globs in the elements), optionally with one leading '-' to exclude.
// The Pants rules check this too; k4stool checks again so that no value can
// turn into a flag or a path outside the sandbox (defence in depth).
var patternElem = regexp.MustCompile(`^[A-Za-z0-9._~+*?\[\]-]+$`)

func CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		bare := strings.TrimPrefix(p, "-")
		ok := bare != "" && !strings.HasPrefix(bare, "-") && !strings.HasPrefix(bare, "/") && !strings.HasSuffix(bare, "/")
		for _, e := range strings.Split(bare, "/") {
			if !ok {
				break
			}
			ok = patternElem.MatchString(e) && !strings.HasPrefix(e, ".") && !strings.HasSuffix(e, ".")
		}
		if !ok {
			return Errorf("E_BAD_PATTERN", "%q is not a Go import path, glob or exclusion", p)
		}
	}
	return nil
}

// Within reports whether path p (absolute or relative to the working
// directory) lies inside dir, after cleaning; it resolves no symlinks.
func Within(dir, p string) bool {
	rel, err := filepath.Rel(MustAbs(dir), MustAbs(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// Run runs a command, streaming its stderr to ours and also returning it.
func Run(dir string, env []string, name string, args ...string) (string, string, error) {
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

func MustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		Fatalf("E_INTERNAL", "%v", err)
	}
	return a
}

// WriteFileAtomic writes data to a temporary file next to path with the
// given mode (from the start: a key is never readable by others) and renames
// it over path.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return WriteAtomic(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func WriteAtomic(path string, mode os.FileMode, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}
