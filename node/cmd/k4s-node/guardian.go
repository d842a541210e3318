package main

// If k4s-node itself dies (a bug, the OOM killer, a kill from a hostPID pod), nothing
// would supervise the components, and u-root's init would hand the console to a
// shell. So the k4s-node that init starts (uinit) is a small guardian: it runs the
// supervisor (this same binary, re-executed with K4S_SUPERVISOR set) as its child,
// in a process group of its own that the components inherit, and when the
// supervisor dies it ends what the supervisor left in that group (SIGTERM, SIGKILL
// after componentStopBound; containerd's shims and so the pods' containers are in
// groups of their own and keep running) and starts the supervisor again, which
// starts the components again over the same state (the kubelet finds its pods).
//
// Why not (only) a hardware watchdog (QEMU -device i6300esb): a watchdog reset
// reboots the machine, which on a diskless node erases the cluster, and `pants run`
// starts QEMU with -no-reboot (a reset ends the VM). The guardian recovers in
// seconds and keeps the state; what it cannot catch (a kernel hang, the guardian's
// own death) is a watchdog's job on hardware with a data disk.

import (
	"errors"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const supervisorEnv = "K4S_SUPERVISOR"

// isSupervisor tells whether this process is the guardian's child.
func isSupervisor() bool { return os.Getenv(supervisorEnv) != "" }

// guard runs the supervisor and restarts it when it dies; it passes SIGTERM and
// SIGINT on to it. It returns only when the supervisor exited with status 0 (a
// completed shutdown without powering off).
func guard() {
	log.SetPrefix("[k4s-node guardian] ")
	// The guardian is never the OOM killer's pick; its supervisor sets its own -999.
	setOOMScoreAdj("k4s-node guardian", os.Getpid(), -1000)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	var delay time.Duration
	for restarts := 0; ; restarts++ {
		cmd := exec.Command(exe, os.Args[1:]...)
		cmd.Args[0] = os.Args[0]
		cmd.Env = append(os.Environ(), supervisorEnv+"="+strconv.Itoa(restarts))
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		started := time.Now()
		if err := cmd.Start(); err != nil {
			log.Printf("start the supervisor: %v", err)
		} else {
			log.Printf("started the supervisor (pid %d)", cmd.Process.Pid)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			err := forward(sigs, cmd.Process, done)
			if err == nil {
				return
			}
			log.Printf("the supervisor (pid %d) died: %v; ending the components it ran and starting it again", cmd.Process.Pid, err)
			endGroup(cmd.Process.Pid, componentStopBound)
		}
		delay = restartDelay(delay, time.Since(started), false)
		time.Sleep(delay)
	}
}

// forward passes signals to the supervisor until it exits, and returns its Wait error.
func forward(sigs <-chan os.Signal, p *os.Process, done <-chan error) error {
	for {
		select {
		case s := <-sigs:
			_ = p.Signal(s)
		case err := <-done:
			return err
		}
	}
}

// endGroup ends a process group: SIGTERM (and SIGCONT), then SIGKILL after bound.
func endGroup(pgid int, bound time.Duration) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
