package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLivenessCountsFailuresAfterAPass(t *testing.T) {
	fail := errors.New("down")
	var s livenessState
	// Still starting: failures before the first pass do not count.
	for i := 0; i < 10; i++ {
		if s.observe(100, fail, false, 3) {
			t.Fatal("restart before the component ever passed its check")
		}
	}
	s.observe(100, nil, false, 3)
	if s.observe(100, fail, false, 3) || s.observe(100, fail, false, 3) {
		t.Fatal("restart before 3 failures")
	}
	s.observe(100, nil, false, 3) // a pass resets the count
	if s.observe(100, fail, false, 3) || s.observe(100, fail, false, 3) {
		t.Fatal("a pass did not reset the count")
	}
	if !s.observe(100, fail, false, 3) {
		t.Fatal("no restart after 3 failures in a row")
	}
	// After the restart: disarmed until the new process passes.
	if s.observe(100, fail, false, 3) || s.observe(101, fail, false, 3) || s.observe(101, fail, false, 3) || s.observe(101, fail, false, 3) {
		t.Fatal("restarted again before the new process passed")
	}
	// A new process (it exited and supervise restarted it) starts a new count.
	s.observe(101, nil, false, 3)
	s.observe(101, fail, false, 3)
	s.observe(101, fail, false, 3)
	if s.observe(102, fail, false, 3) {
		t.Fatal("a new process inherited its predecessor's failures")
	}
}

// A failure while the process computes (overload) weighs 1/busyWeight of one while it
// gets no CPU (stopped, deadlocked): a busy component gets busyWeight times as long.
func TestLivenessGivesABusyProcessLonger(t *testing.T) {
	fail := errors.New("timeout")
	var s livenessState
	s.observe(7, nil, true, 3)
	for i := 1; i < 3*busyWeight; i++ {
		if s.observe(7, fail, true, 3) {
			t.Fatalf("a busy process was restarted after %d failures", i)
		}
	}
	if !s.observe(7, fail, true, 3) {
		t.Fatalf("a busy process was not restarted after %d failures", 3*busyWeight)
	}
	// Mixed failures add up by weight: idle, busy, idle is 7 of 9; two busy ones more is 9.
	s.observe(8, nil, false, 3)
	if s.observe(8, fail, false, 3) || s.observe(8, fail, true, 3) || s.observe(8, fail, false, 3) ||
		s.observe(8, fail, true, 3) {
		t.Fatal("restart before the failures weighed 3 idle ones")
	}
	if !s.observe(8, fail, true, 3) {
		t.Fatal("no restart when the failures weighed 3 idle ones")
	}
}

func TestStatCPUTicks(t *testing.T) {
	// A command name with spaces and parentheses, as /proc shows it.
	stat := "1234 (kube (api) server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 12 0 300 0 0"
	if got := statCPUTicks(stat); got != 287 {
		t.Fatalf("utime+stime: got %d, want 287", got)
	}
	for _, bad := range []string{"", "1234 kube-apiserver S", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b"} {
		if got := statCPUTicks(bad); got != -1 {
			t.Errorf("%q: got %d, want -1", bad, got)
		}
	}
	if cpuTicks(os.Getpid()) < 0 {
		t.Error("this process's CPU time was not read")
	}
}

func TestHTTPOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			fmt.Fprint(w, `{"health":"true","reason":""}`)
		case "/sick":
			fmt.Fprint(w, `{"health":"false","reason":"RAFT NO LEADER"}`)
		default:
			http.Error(w, "livez check failed", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	if err := httpOK(srv.URL+"/health", []byte(`"health":"true"`)); err != nil {
		t.Error(err)
	}
	if err := httpOK(srv.URL+"/sick", []byte(`"health":"true"`)); err == nil {
		t.Error("an unhealthy etcd passed")
	}
	if err := httpOK(srv.URL+"/livez", nil); err == nil {
		t.Error("HTTP 500 passed")
	}
}

// grpcAnswers tells a serving gRPC (HTTP/2) server from a socket nobody serves: a
// hung process's listening socket still accepts connections.
func TestGRPCAnswers(t *testing.T) {
	dir := t.TempDir()
	serving := filepath.Join(dir, "serving.sock")
	hung := filepath.Join(dir, "hung.sock")
	ls, err := net.Listen("unix", serving)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	go func() {
		for {
			c, err := ls.Accept()
			if err != nil {
				return
			}
			// An HTTP/2 server's first frame: its SETTINGS (empty here); it then reads
			// the client's preface until the client hangs up.
			go func() {
				defer c.Close()
				c.Write([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
				io.Copy(io.Discard, c)
			}()
		}
	}()
	lh, err := net.Listen("unix", hung) // never accepted: the kernel's backlog answers the dial
	if err != nil {
		t.Fatal(err)
	}
	defer lh.Close()
	if err := grpcAnswers(serving, time.Second); err != nil {
		t.Errorf("serving: %v", err)
	}
	start := time.Now()
	if err := grpcAnswers(hung, time.Second); err == nil {
		t.Error("a hung server answered")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the check of a hung server took %s", d)
	}
	if err := grpcAnswers(filepath.Join(dir, "none.sock"), time.Second); err == nil {
		t.Error("no socket passed")
	}
}

func TestLivenessChecksCoverTheComponents(t *testing.T) {
	n := &node{data: t.TempDir()}
	for _, c := range []string{"kube-apiserver", "etcd", "kine", "containerd", "kubelet", "coredns"} {
		if n.livenessCheck(c) == nil {
			t.Errorf("%s has no liveness check", c)
		}
	}
}
