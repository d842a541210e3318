package main

// Liveness: a component can hang without exiting (a deadlock, SIGSTOP, a stuck disk).
// Every livenessPeriod k4s-node checks each running component that has a check;
// after livenessThreshold failures in a row it kills the component (SIGKILL: a hung
// process may not act on SIGTERM) and supervise starts it again at once. A check
// counts only once it has passed for the component's current process, so a
// component that is still starting (minutes on a busy TCG machine) is left alone.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
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
)

// livenessState counts a component's failed checks.
type livenessState struct {
	pid      int  // the process the count is about
	armed    bool // a check passed for this process
	failures int  // failed checks in a row since
}

// observe records a check of the component's process pid and tells whether to
// restart it (threshold failures in a row, after a pass).
func (s *livenessState) observe(pid int, err error, threshold int) bool {
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
	s.failures++
	if s.failures < threshold {
		return false
	}
	*s = livenessState{pid: pid}
	return true
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

// watchLiveness runs the checks until shutdown.
func (n *node) watchLiveness() {
	states := map[string]*livenessState{}
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
			err := check()
			if err != nil && s.armed {
				log.Printf("liveness: %s (pid %d) failed its check (%d of %d): %v", c, pid, s.failures+1, livenessThreshold, err)
			}
			if s.observe(pid, err, livenessThreshold) {
				log.Printf("liveness: %s (pid %d) is hung: killing it", c, pid)
				if err := restartWith(c, syscall.SIGKILL, 10*time.Second); err != nil && !errors.Is(err, errNotRunning) {
					log.Printf("liveness: %v", err)
				}
			}
		}
	}
}
