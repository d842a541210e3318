package main

// Component logs in files, for an operator without a shell. Every line a
// component writes (and k4s-node's own) goes to the console, as before, and to
// /var/log/<name>.log, where the kubelet's node log query finds it without
// journalctl (k8s.io/kubernetes pkg/kubelet/kubelet_server_journal.go at
// v1.37.2: with no journalctl, `query=<name>` reads /var/log/<name>, then
// /var/log/<name>.log, then /var/log/<name>/<name>.log):
//
//	kubectl get --raw "/api/v1/nodes/<node>/proxy/logs/?query=kubelet"
//	kubectl get --raw "/api/v1/nodes/<node>/proxy/logs/kubelet.log.1"   # the rotated part
//
// Each file is rotated once (<name>.log -> <name>.log.1) when it reaches its
// share of the total budget (-log-max, MiB): the logs never hold more than that,
// in RAM on a diskless node.

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// minLogFile is the smallest file size a log is rotated at: one piece of a long
// line (prefix reads at most 64 KiB at a time) always fits.
const minLogFile = 64 << 10

// earlyLogMax bounds k4s-node's own lines kept in memory until the log files
// are opened (lines from before the mounts and the network).
const earlyLogMax = 64 << 10

// rotatingFile is one log file, rotated to <path>.1 when it would grow past max.
type rotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
	now  func() time.Time
}

// writeLine appends one line with the time in front. Errors (a full
// filesystem) lose the line in the file, never on the console.
func (r *rotatingFile) writeLine(line []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	b.Grow(len(line) + 32)
	b.WriteString(r.now().UTC().Format("2006-01-02T15:04:05.000Z "))
	b.Write(bytes.TrimRight(line, "\n"))
	b.WriteByte('\n')
	if int64(b.Len()) > r.max {
		b.Truncate(int(r.max) - 1)
		b.WriteByte('\n')
	}
	if r.f != nil && r.size+int64(b.Len()) > r.max {
		r.f.Close()
		r.f = nil
		if err := os.Rename(r.path, r.path+".1"); err != nil {
			os.Remove(r.path)
		}
	}
	if !r.openLocked(int64(b.Len())) {
		return
	}
	n, _ := r.f.Write(b.Bytes())
	r.size += int64(n)
}

// create makes the file exist (empty, or as left from before) without a line:
// a component's log is there from its start, so the node log query
// (`?query=<component>`) finds one that has printed nothing yet.
func (r *rotatingFile) create() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.openLocked(0)
}

// openLocked opens the file for appending if it is not open, rotating first a
// file left from before (a data disk) that next more bytes would overfill.
// It reports whether the file is open. r.mu is held.
func (r *rotatingFile) openLocked(next int64) bool {
	if r.f != nil {
		return true
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return false
	}
	r.f, r.size = f, st.Size()
	if r.size+next > r.max {
		r.f.Close()
		r.f = nil
		os.Rename(r.path, r.path+".1")
		if r.f, err = os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			r.f = nil
			return false
		}
		r.size = 0
	}
	return true
}

// logFiles are the open log files by name ("kubelet", "k4s-node"), once
// openLogFiles has run; until then only the console has the lines.
var logFiles struct {
	sync.Mutex
	dir     string
	perFile int64
	files   map[string]*rotatingFile
	early   bytes.Buffer // k4s-node's lines before the files were opened
}

// logFileSize is the size each file is rotated at: the budget (bytes) shared by
// sources names, each with a current and a rotated file.
func logFileSize(budget int64, sources int) int64 {
	if sources < 1 {
		sources = 1
	}
	size := budget / int64(2*sources)
	if size < minLogFile {
		size = minLogFile
	}
	return size
}

// openLogFiles starts writing logs under dir: k4s-node's own lines (those
// logged so far too) and every component's. budgetMiB is the total, shared by
// the components plus k4s-node.
func openLogFiles(dir string, budgetMiB int, components []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("log directory %s: %w", dir, err)
	}
	per := logFileSize(int64(budgetMiB)<<20, len(components)+1)
	logFiles.Lock()
	logFiles.dir, logFiles.perFile = dir, per
	logFiles.files = map[string]*rotatingFile{}
	early := logFiles.early.Bytes()
	logFiles.early = bytes.Buffer{}
	logFiles.Unlock()
	if own := logFile("k4s-node"); own != nil {
		for _, line := range bytes.SplitAfter(early, []byte("\n")) {
			if len(line) > 0 {
				own.writeLine(line)
			}
		}
	}
	log.Printf("logs: %s/<component>.log (kubectl get --raw \"/api/v1/nodes/<node>/proxy/logs/?query=<component>\"), "+
		"each rotated once at %d KiB: at most %d MiB for %d logs", dir, per>>10, budgetMiB, len(components)+1)
	return nil
}

// logFile is the file of name's lines, or nil while the files are not open.
func logFile(name string) *rotatingFile {
	logFiles.Lock()
	defer logFiles.Unlock()
	if logFiles.files == nil {
		return nil
	}
	f, ok := logFiles.files[name]
	if !ok {
		f = &rotatingFile{path: filepath.Join(logFiles.dir, name+".log"), max: logFiles.perFile, now: time.Now}
		logFiles.files[name] = f
	}
	return f
}

// ownLog is k4s-node's log output: the console, and its log file (or, until the
// file is open, a bounded buffer of the first lines).
type ownLog struct{ console io.Writer }

func (o ownLog) Write(p []byte) (int, error) {
	n, err := o.console.Write(p)
	if f := logFile("k4s-node"); f != nil {
		f.writeLine(p)
	} else {
		logFiles.Lock()
		if logFiles.early.Len()+len(p) <= earlyLogMax {
			logFiles.early.Write(p)
		}
		logFiles.Unlock()
	}
	return n, err
}
