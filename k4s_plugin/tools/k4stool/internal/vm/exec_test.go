//go:build !k4s_download

package vm

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The process execTiedToParent starts stops when its parent dies: a parent
// process (this test binary again) starts a child that execs `sleep 300` tied to
// it; the sleep runs while the parent lives and is gone soon after the parent is
// killed with SIGKILL (which the parent cannot pass on).
func TestExecDiesWithItsParent(t *testing.T) {
	self := []string{"-test.run=^TestExecDiesWithItsParent$"}
	switch os.Getenv("K4S_VM_EXEC_TEST") {
	case "child":
		if err := execTiedToParent("/bin/sleep", []string{"sleep", "300"}); err != nil {
			t.Fatal(err)
		}
	case "parent":
		child := exec.Command(os.Args[0], self...)
		child.Env = append(os.Environ(), "K4S_VM_EXEC_TEST=child")
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString(strconv.Itoa(child.Process.Pid) + "\n")
		time.Sleep(5 * time.Minute)
		return
	}
	if _, err := os.Stat("/bin/sleep"); err != nil {
		t.Skip("no /bin/sleep")
	}
	parent := exec.Command(os.Args[0], self...)
	parent.Env = append(os.Environ(), "K4S_VM_EXEC_TEST=parent")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = parent.Process.Kill(); _ = parent.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(line)
	running := func() bool { // alive and not a zombie, as `sleep`
		comm, err := os.ReadFile("/proc/" + pid + "/comm")
		stat, err2 := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || err2 != nil {
			return false
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		return strings.TrimSpace(string(comm)) == "sleep" && len(f) > 0 && f[0] != "Z"
	}
	deadline := time.Now().Add(30 * time.Second)
	for !running() {
		if time.Now().After(deadline) {
			t.Fatalf("the child (pid %s) never became `sleep`", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if !running() {
		t.Fatalf("`sleep` (pid %s) stopped while its parent was alive", pid)
	}
	_ = parent.Process.Kill()
	_ = parent.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for running() {
		if time.Now().After(deadline) {
			_ = exec.Command("kill", "-9", pid).Run()
			t.Fatalf("`sleep` (pid %s) still runs 10 s after its parent was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
