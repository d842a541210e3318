package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestRestartDelayBacksOff(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for i := 0; i < 8; i++ {
		d = restartDelay(d, time.Second, false)
		got = append(got, d)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 32, 32}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v s", got, want)
		}
	}
	if restartDelay(32*time.Second, 2*time.Minute, false) != time.Second {
		t.Error("a run of more than a minute does not reset the back-off")
	}
	if restartDelay(32*time.Second, time.Second, true) != time.Second {
		t.Error("an asked-for restart waits the back-off")
	}
}

func TestProcessStateGone(t *testing.T) {
	for stat, gone := range map[string]bool{
		"123 (kube-apiserver) S 1 123": false,
		"123 (a) b) T 1 123":           false, // stopped (SIGSTOP) is not gone
		"123 (kine) Z 1 123":           true,
		"123 (x) X 1":                  true,
		"garbage":                      true,
	} {
		if processStateGone(stat) != gone {
			t.Errorf("processStateGone(%q) = %t", stat, !gone)
		}
	}
	if processGone(os.Getpid()) {
		t.Error("this test's own process is gone")
	}
}

func TestOOMScoreAdj(t *testing.T) {
	for c, want := range map[string]int{"kine": -999, "etcd": -999, "kube-apiserver": -999, "kubelet": -900, "containerd": -900, "coredns": -900} {
		if got := oomScoreAdj(c); got != want {
			t.Errorf("oomScoreAdj(%s) = %d, want %d", c, got, want)
		}
	}
}

// resetRegistry forgets every component (the registry is the process's own).
func resetRegistry(t *testing.T) {
	t.Cleanup(func() {
		pidsMu.Lock()
		pids, restartAsked, shuttingDown = map[string]int{}, map[string]bool{}, false
		pidsMu.Unlock()
	})
}

func waitPid(t *testing.T, name string, not int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pid := componentPid(name); pid != 0 && pid != not {
			return pid
		}
	}
	t.Fatalf("%s: no new process (old pid %d)", name, not)
	return 0
}

// A real process under supervise: restartComponent replaces it at once (no
// back-off), stopComponent after beginShutdown ends it for good.
func TestSuperviseRestartAndStop(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep on PATH")
	}
	resetRegistry(t)
	done := make(chan struct{})
	go func() { supervise("test-sleeper", []string{sleep, "600"}); close(done) }()
	first := waitPid(t, "test-sleeper", 0)
	start := time.Now()
	if err := restartComponent("test-sleeper"); err != nil {
		t.Fatal(err)
	}
	if !processGone(first) {
		t.Fatal("restartComponent returned with the old process running")
	}
	second := waitPid(t, "test-sleeper", first)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("restart took %s (want the 1 s of an asked-for restart)", d)
	}
	// A stopped (SIGSTOP) process is killed all the same, as liveness does.
	_ = syscall.Kill(second, syscall.SIGSTOP)
	if err := restartWith("test-sleeper", syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	third := waitPid(t, "test-sleeper", second)
	beginShutdown()
	if err := restartComponent("test-sleeper"); err == nil {
		t.Error("restartComponent during shutdown did not fail")
	}
	stopComponent("test-sleeper", 5*time.Second)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("supervise did not return after shutdown stopped its component")
	}
	if !processGone(third) {
		t.Error("the component still runs after stopComponent")
	}
	if err := restartComponent("nothing"); err == nil {
		t.Error("restartComponent of an unknown component did not fail")
	}
}

func TestRestartComponentNotRunning(t *testing.T) {
	resetRegistry(t)
	if err := restartComponent("kubelet"); !errors.Is(err, errNotRunning) {
		t.Errorf("restartComponent(kubelet) with nothing running = %v", err)
	}
}

func TestStatusKB(t *testing.T) {
	status := "Name:\tkube-apiserver\nVmRSS:\t  180000 kB\nRssAnon:\t  165000 kB\nRssFile:\t 15000 kB\n"
	if kb, ok := statusKB(status, "RssAnon:"); !ok || kb != 165000 {
		t.Fatalf("RssAnon: got %d %v", kb, ok)
	}
	if _, ok := statusKB(status, "RssShmem:"); ok {
		t.Fatal("a missing field was found")
	}
	if _, ok := statusKB("RssAnon:\tlots kB\n", "RssAnon:"); ok {
		t.Fatal("a malformed number was accepted")
	}
}
