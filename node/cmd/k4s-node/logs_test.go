package main

import (
	"bytes"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fixedNow() time.Time { return time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC) }

func TestRotatingFileRotatesOnceAndStaysBounded(t *testing.T) {
	dir := t.TempDir()
	r := &rotatingFile{path: filepath.Join(dir, "kubelet.log"), max: 1000, now: fixedNow}
	line := []byte(strings.Repeat("x", 74) + "\n") // 100 bytes with the time
	for i := 0; i < 95; i++ {
		r.writeLine(line)
	}
	cur, err := os.ReadFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(r.path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) != 500 || len(old) != 1000 {
		t.Fatalf("current %d bytes, rotated %d bytes; want 500 and 1000 (95 lines of 100 bytes, 1000 per file)", len(cur), len(old))
	}
	if !strings.HasPrefix(string(cur), "2026-12-07T05:00:00.000Z xxx") {
		t.Fatalf("line without its time: %q", cur[:40])
	}
	if _, err := os.Stat(r.path + ".2"); err == nil {
		t.Fatal("a second rotated file: the total is not bounded")
	}
}

func TestRotatingFileCutsALineLongerThanTheFile(t *testing.T) {
	r := &rotatingFile{path: filepath.Join(t.TempDir(), "x.log"), max: 100, now: fixedNow}
	r.writeLine(bytes.Repeat([]byte("y"), 500))
	data, _ := os.ReadFile(r.path)
	if len(data) != 100 || data[99] != '\n' {
		t.Fatalf("got %d bytes (last %q); want the line cut to 100 bytes ending in a newline", len(data), data[len(data)-1])
	}
}

func TestRotatingFileRotatesALeftoverFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etcd.log")
	os.WriteFile(path, bytes.Repeat([]byte("o"), 990), 0o600)
	r := &rotatingFile{path: path, max: 1000, now: fixedNow}
	r.writeLine([]byte("new line"))
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if string(cur) != "2026-12-07T05:00:00.000Z new line\n" || len(old) != 990 {
		t.Fatalf("current %q, rotated %d bytes", cur, len(old))
	}
}

func TestLogFileSizeSharesTheBudget(t *testing.T) {
	if got := logFileSize(16<<20, 10); got != 16<<20/20 {
		t.Fatalf("16 MiB for 10 logs: %d per file, want %d", got, 16<<20/20)
	}
	if got := logFileSize(1<<20, 100); got != minLogFile {
		t.Fatalf("a tiny budget: %d, want the minimum %d", got, minLogFile)
	}
}

// The node log query reads /var/log/<name>.log: prefix writes every line there
// and on the console, and k4s-node's lines from before the files opened arrive too.
func TestPrefixAndOwnLogWriteTheFiles(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	console = &out
	defer func() { console = os.Stdout }()
	logger := log.New(ownLog{io.Discard}, "[k4s-node] ", 0)
	logFiles.files = nil
	logger.Printf("early line")
	if err := openLogFiles(dir, 16, []string{"kubelet", "kine"}); err != nil {
		t.Fatal(err)
	}
	defer func() { logFiles.Lock(); logFiles.files = nil; logFiles.Unlock() }()
	logger.Printf("late line")
	prefix("kubelet", strings.NewReader("I1207 first\nI1207 second\n"))
	if !strings.Contains(out.String(), "[kubelet] I1207 second\n") {
		t.Fatalf("console: %q", out.String())
	}
	kubelet, _ := os.ReadFile(filepath.Join(dir, "kubelet.log"))
	if got := strings.Count(string(kubelet), "\n"); got != 2 || !strings.HasSuffix(string(kubelet), " I1207 second\n") {
		t.Fatalf("kubelet.log: %q", kubelet)
	}
	// A component that has printed nothing has its (empty) file: the node log
	// query finds it.
	prefix("kine", strings.NewReader(""))
	if st, err := os.Stat(filepath.Join(dir, "kine.log")); err != nil || st.Size() != 0 {
		t.Fatalf("kine.log of a silent component: %v %v", st, err)
	}
	own, _ := os.ReadFile(filepath.Join(dir, "k4s-node.log"))
	if !strings.Contains(string(own), "[k4s-node] early line\n") || !strings.Contains(string(own), "[k4s-node] late line\n") {
		t.Fatalf("k4s-node.log: %q", own)
	}
}
