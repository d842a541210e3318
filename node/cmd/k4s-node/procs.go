package main

// The registry of running components (supervise in components.go keeps it): their
// pids, which of them were asked to restart, and whether the node is shutting down
// (then nothing restarts). restartComponent is the door for other code (e.g. after
// new certificates are written) and the liveness checks (liveness.go).

import (
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// restartAsked: components whose next exit was asked for (restarted at once).
	restartAsked = map[string]bool{}
	// shuttingDown: no component starts or restarts any more.
	shuttingDown bool
)

// oomScoreAdj is a component's /proc/<pid>/oom_score_adj: the datastore and the
// apiserver are the last the kernel's OOM killer picks, the rest of the node's own
// processes next to last (a pod's processes get the kubelet's QoS values, 1000 for
// BestEffort down to -997 for Guaranteed).
func oomScoreAdj(name string) int {
	switch name {
	case "kine", "etcd", "kube-apiserver":
		return -999
	}
	return -900
}

// componentStarted records a component's new process and protects it from the OOM killer.
func componentStarted(name string, pid int) {
	pidsMu.Lock()
	pids[name] = pid
	pidsMu.Unlock()
	setOOMScoreAdj(name, pid, oomScoreAdj(name))
}

func setOOMScoreAdj(name string, pid, adj int) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(fmt.Sprint(adj)), 0); err != nil {
		log.Printf("%s: oom_score_adj: %v", name, err)
	}
}

// componentExited forgets a component's process; it says whether supervise should
// start it again, and whether that restart was asked for (no back-off).
func componentExited(name string, pid int) (again, asked bool) {
	pidsMu.Lock()
	defer pidsMu.Unlock()
	if pids[name] == pid {
		delete(pids, name)
	}
	asked = restartAsked[name]
	delete(restartAsked, name)
	return !shuttingDown, asked
}

// mayStart tells whether a component may (re)start: not once shutdown began.
func mayStart() bool {
	pidsMu.Lock()
	defer pidsMu.Unlock()
	return !shuttingDown
}

// beginShutdown stops all restarts.
func beginShutdown() {
	pidsMu.Lock()
	shuttingDown = true
	pidsMu.Unlock()
}

// restartDelay is how long supervise waits before starting a component again: 1 s
// when the restart was asked for, after a first exit or after a run of more than a
// minute; else twice the last delay, up to 32 s.
func restartDelay(last, ran time.Duration, asked bool) time.Duration {
	switch {
	case asked || last == 0 || ran > time.Minute:
		return time.Second
	case last < 30*time.Second:
		return 2 * last
	}
	return last
}

func componentPid(name string) int {
	pidsMu.Lock()
	defer pidsMu.Unlock()
	return pids[name]
}

// errNotRunning: the component has no process now.
var errNotRunning = errors.New("not running")

// restartComponent restarts a running component: SIGTERM (and SIGCONT, in case it
// is stopped), SIGKILL if it has not exited within 15 s; supervise starts it again
// after 1 s. It returns once the old process is gone.
func restartComponent(name string) error {
	return restartWith(name, syscall.SIGTERM, 15*time.Second)
}

// restartWith ends a component's process with sig (then SIGKILL after bound) so that
// supervise starts it again at once.
func restartWith(name string, sig syscall.Signal, bound time.Duration) error {
	pidsMu.Lock()
	pid := pids[name]
	if shuttingDown {
		pidsMu.Unlock()
		return fmt.Errorf("restart %s: the node is shutting down", name)
	}
	if pid == 0 {
		pidsMu.Unlock()
		return fmt.Errorf("restart %s: %w", name, errNotRunning)
	}
	restartAsked[name] = true
	pidsMu.Unlock()
	log.Printf("restarting %s (pid %d): %s", name, pid, unix.SignalName(sig))
	endProcess(name, pid, sig, bound)
	return nil
}

// stopComponent ends a component for good (shutdown): SIGTERM, SIGKILL after bound.
func stopComponent(name string, bound time.Duration) {
	pid := componentPid(name)
	if pid == 0 {
		return
	}
	start := time.Now()
	if endProcess(name, pid, syscall.SIGTERM, bound) {
		log.Printf("shutdown: %s exited after %s", name, time.Since(start).Round(10*time.Millisecond))
	}
}

// endProcess sends sig (and SIGCONT) to pid and waits for it to exit; after bound it
// sends SIGKILL. It says whether the process exited before SIGKILL.
func endProcess(name string, pid int, sig syscall.Signal, bound time.Duration) bool {
	_ = syscall.Kill(pid, sig)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	if waitGone(pid, bound) {
		return true
	}
	log.Printf("%s (pid %d) did not exit %s after %s: SIGKILL", name, pid, unix.SignalName(sig), bound)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitGone(pid, 10*time.Second)
	return false
}

// waitGone polls until pid has exited (gone, or a zombie its parent has not reaped
// yet) or bound passes.
func waitGone(pid int, bound time.Duration) bool {
	for deadline := time.Now().Add(bound); ; time.Sleep(50 * time.Millisecond) {
		if processGone(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// processGone tells whether pid no longer runs: no /proc entry, or state Z (zombie) or X.
func processGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	return processStateGone(string(data))
}

// processStateGone reads the state field of a /proc/<pid>/stat line (after the
// command name in parentheses, which may itself hold spaces and parentheses).
func processStateGone(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true
	}
	state := stat[i+2]
	return state == 'Z' || state == 'X'
}
