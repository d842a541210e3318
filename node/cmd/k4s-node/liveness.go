package main

// Liveness: a component can hang without exiting (a deadlock, SIGSTOP, a stuck disk).
// Every livenessPeriod k4s-node checks each running component that has a check;
// after livenessThreshold failures in a row it kills the component (SIGKILL: a hung
// process may not act on SIGTERM) and supervise starts it again at once. A check
// counts only once it has passed for the component's current process, so a
// component that is still starting (minutes on a busy TCG machine) is left alone.
//
// Hung or busy: a process that fails its check while it gets no CPU time (stopped,
// deadlocked, blocked on a dead disk) is hung; one that fails while computing is
// overloaded (measured: a talos-like node on an overloaded TCG host failed 8 checks
// in a row and had its working apiserver killed, which made it slower still). A
// failure while busy counts as 1/busyWeight of one while idle: a busy component is
// killed only after busyWeight times as many failures in a row (a livelock still is).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// As kubeadm probes its static pods (period 10 s, timeout 15 s, 8 failures): on a
// loaded 2-core TCG machine /livez took over 10 s (3 failures killed a working
// apiserver, measured).
const (
	livenessPeriod    = 10 * time.Second
	livenessTimeout   = 15 * time.Second
	livenessThreshold = 8
	// A failed check while the process used at least busyTicks of CPU (clock
	// ticks, 10 ms each) since the previous check weighs 1/busyWeight.
	busyWeight = 3
	busyTicks  = 5
)

// livenessState counts a component's failed checks.
type livenessState struct {
	pid      int  // the process the count is about
	armed    bool // a check passed for this process
	failures int  // failed checks in a row since, idle ones weighing busyWeight
}

// observe records a check of the component's process pid and tells whether to
// restart it (threshold failures in a row after a pass, busyWeight times as many if
// the process was busy: see the top of this file).
func (s *livenessState) observe(pid int, err error, busy bool, threshold int) bool {
	if pid != s.pid {
		*s = livenessState{pid: pid}
	}
	if err == nil {
		s.armed, s.failures = true, 0
		return false
	}
	if !s.armed {
		return false
	}
	if busy {
		s.failures++
	} else {
		s.failures += busyWeight
	}
	if s.failures < threshold*busyWeight {
		return false
	}
	*s = livenessState{pid: pid}
	return true
}

// cpuTicks is a process's CPU time so far (utime + stime, in clock ticks), or -1.
func cpuTicks(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	return statCPUTicks(string(data))
}

// statCPUTicks reads utime and stime from a /proc/<pid>/stat line: fields 14 and 15,
// counted after the command name, which is in parentheses and may hold spaces.
func statCPUTicks(stat string) int64 {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return -1
	}
	f := strings.Fields(stat[end+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return utime + stime
}

// livenessCheck is a component's check, or nil when it has none.
func (n *node) livenessCheck(c string) func() error {
	switch c {
	case "kube-apiserver":
		// Without its datastore check: a slow datastore is not the apiserver's hang
		// (and has its own check); restarting the apiserver would not help it.
		return n.apiserverLive
	case "etcd":
		// The metrics listener (127.0.0.1, plain HTTP) answers /health from etcd's raft state.
		return func() error { return httpOK("http://127.0.0.1:2381/health", []byte(`"health":"true"`)) }
	case "kine":
		return func() error { return grpcAnswers(kineSocket(n), livenessTimeout) }
	case "containerd":
		return func() error { return grpcAnswers("/run/containerd/containerd.sock", livenessTimeout) }
	case "kubelet":
		return func() error { return httpOK("http://127.0.0.1:10248/healthz", nil) }
	case "coredns":
		return func() error { return httpOK("http://127.0.0.1:8080/health", nil) }
	}
	return nil
}

var probeClient = &http.Client{Timeout: livenessTimeout}

// apiserverLive GETs kube-apiserver's /livez as the node's admin.
func (n *node) apiserverLive() error {
	client, err := n.apiClient()
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: livenessTimeout, Transport: client.Transport}
	resp, err := c.Get(n.apiURL() + "/livez?exclude=etcd")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /livez: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// httpOK GETs url and wants HTTP 200 (and want in the body, if not nil).
func httpOK(url string, want []byte) error {
	resp, err := probeClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	if want != nil && !bytes.Contains(body, want) {
		return fmt.Errorf("GET %s: %s", url, bytes.TrimSpace(body))
	}
	return nil
}

// http2Preface is an HTTP/2 client's connection preface and an empty SETTINGS frame.
var http2Preface = append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)

// grpcAnswers tells whether the gRPC server on a unix socket answers: a hung server's
// socket still accepts connections (the kernel does), but only a running server
// sends its HTTP/2 SETTINGS frame.
func grpcAnswers(socket string, timeout time.Duration) error {
	c, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(http2Preface); err != nil {
		return err
	}
	hdr := make([]byte, 9)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return fmt.Errorf("%s: no HTTP/2 answer: %w", socket, err)
	}
	if hdr[3] != 4 {
		return fmt.Errorf("%s: HTTP/2 frame type %d, want SETTINGS", socket, hdr[3])
	}
	return nil
}

// procTicks is a process's CPU time when it was last checked.
type procTicks struct {
	pid   int
	ticks int64
}

// watchLiveness runs the checks until shutdown.
func (n *node) watchLiveness() {
	states := map[string]*livenessState{}
	ticks := map[string]procTicks{} // each component's CPU time at its previous check
	for mayStart() {
		time.Sleep(livenessPeriod)
		for _, c := range n.components {
			check := n.livenessCheck(c)
			pid := componentPid(c)
			if check == nil || pid == 0 || !mayStart() {
				continue
			}
			s := states[c]
			if s == nil {
				s = &livenessState{}
				states[c] = s
			}
			before := ticks[c]
			err := check()
			now := cpuTicks(pid)
			ticks[c] = procTicks{pid, now}
			busy := before.pid == pid && before.ticks >= 0 && now-before.ticks >= busyTicks
			if err != nil && s.armed {
				how, w := "idle", busyWeight
				if busy {
					how, w = "busy", 1
				}
				log.Printf("liveness: %s (pid %d) failed its check while %s (%d of %d; a busy failure counts 1, an idle one %d): %v",
					c, pid, how, s.failures+w, livenessThreshold*busyWeight, busyWeight, err)
			}
			if s.observe(pid, err, busy, livenessThreshold) {
				log.Printf("liveness: %s (pid %d) is hung: killing it", c, pid)
				if err := restartWith(c, syscall.SIGKILL, 10*time.Second); err != nil && !errors.Is(err, errNotRunning) {
					log.Printf("liveness: %v", err)
				}
			}
		}
	}
}
