package main

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// endGroup ends every process of a group, also one that ignores SIGTERM (SIGKILL
// after the bound).
func TestEndGroup(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command(sh, "-c", `trap "" TERM; sleep 600 & sleep 600 & wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait() // reap the group leader, as the guardian does
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	endGroup(cmd.Process.Pid, time.Second)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := syscall.Kill(-cmd.Process.Pid, 0); err == syscall.ESRCH {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the process group still has processes")
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("endGroup took %s", d)
	}
}
