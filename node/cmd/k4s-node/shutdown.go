package main

// Orderly shutdown. A request (SIGTERM or SIGINT to k4s-node, or the ACPI power
// button: QEMU's `system_powerdown`, a machine's button; powerbutton.go) stops the
// node in reverse start order: the kubelet first, then the pods' containers through
// containerd (the kubelet's graceful node shutdown needs systemd-logind inhibitors,
// which this node has not: each container gets its stop signal, SIGTERM unless the
// image says otherwise, and its pod's terminationGracePeriodSeconds up to
// podStopBound, then SIGKILL), containerd, the network and kube-proxy/CoreDNS, the
// control plane, the datastore last (SIGTERM, and a wait for its clean exit); then
// sync, unmount what is mounted under /var/lib and /var/log (and the containers'
// root filesystems under /run/containerd), and power off.

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/sys/unix"
)

const (
	// podStopBound caps a pod's grace period at shutdown (the default
	// terminationGracePeriodSeconds is 30 s).
	podStopBound = 30 * time.Second
	// datastoreStopBound is how long kine or etcd may take to close cleanly.
	datastoreStopBound = 60 * time.Second
	// apiserverStopBound: kube-apiserver drains its requests (on a loaded TCG machine
	// it took more than 15 s, measured).
	apiserverStopBound = 30 * time.Second
	// componentStopBound is how long any other component may take after SIGTERM.
	componentStopBound = 15 * time.Second
)

// shutdownOrder is the order components stop in: the kubelet first (so that it does
// not restart the pods being stopped), containerd, then the others in reverse start
// order, which puts the datastore last.
func shutdownOrder(started []string) []string {
	var order []string
	for _, c := range []string{"kubelet", "containerd"} {
		if slices.Contains(started, c) {
			order = append(order, c)
		}
	}
	for i := len(started) - 1; i >= 0; i-- {
		if !slices.Contains(order, started[i]) {
			order = append(order, started[i])
		}
	}
	return order
}

// stopBound is how long a component may take to exit after SIGTERM.
func stopBound(c string) time.Duration {
	switch c {
	case "kine", "etcd":
		return datastoreStopBound
	case "kube-apiserver":
		return apiserverStopBound
	}
	return componentStopBound
}

// shutdownRequests delivers the reasons for shutting down: SIGTERM, SIGINT, or the
// power button.
func shutdownRequests() <-chan string {
	reqs := make(chan string, 4)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range sigs {
			reqs <- "signal " + s.String()
		}
	}()
	go watchPowerButton(reqs)
	return reqs
}

// shutdown stops the node (see the top of this file) and powers the machine off, or,
// when k4s-node did not set up the machine (-system=false), exits.
func (n *node) shutdown(reason string, system bool) {
	start := time.Now()
	order := shutdownOrder(n.components)
	log.Printf("shutdown (%s): stopping %s", reason, strings.Join(order, ", "))
	beginShutdown()
	for _, c := range order {
		stopComponent(c, stopBound(c))
		if c == "kubelet" {
			stopPods(podStopBound)
		}
	}
	unix.Sync()
	if system {
		unmountState()
		unix.Sync()
	}
	log.Printf("shutdown complete after %s", time.Since(start).Round(100*time.Millisecond))
	if !system {
		os.Exit(0)
	}
	log.Printf("powering off")
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		halt("power off: %v", err)
	}
	select {}
}

// stateMountPrefixes are where the node's state may be mounted (a data disk, its bind
// mounts, the kubelet's and containerd's tmpfs, the pods' volumes), and containerd's
// mounts of the containers' root filesystems (overlays whose layers are under
// /var/lib/containerd, which stays busy while they are mounted).
var stateMountPrefixes = []string{"/run/containerd", "/var/lib", "/var/log"}

// mountsUnder lists the mount points of mountinfo under the prefixes, deepest (last
// mounted) first.
func mountsUnder(mountinfo string, prefixes []string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		dst := unescapeMountPath(f[4])
		for _, p := range prefixes {
			if dst == p || strings.HasPrefix(dst, p+"/") {
				out = append(out, dst)
				break
			}
		}
	}
	slices.Reverse(out)
	return out
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 is a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountState unmounts everything under /var/lib and /var/log. A mount still busy
// is remounted read-only (so a filesystem on a disk is clean) and detached.
func unmountState() {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		log.Printf("shutdown: %v", err)
		return
	}
	for _, m := range mountsUnder(string(data), stateMountPrefixes) {
		if err := unix.Unmount(m, 0); err != nil {
			if rerr := unix.Mount("", m, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); rerr != nil {
				log.Printf("shutdown: unmount %s: %v; remount read-only: %v", m, err, rerr)
			}
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	}
}

// podContainer is a container of a pod, as containerd's CRI plugin records it.
type podContainer struct {
	id, pod, name string
	sandbox       bool
	grace         time.Duration
	signal        syscall.Signal
}

// criMetadata is the part of containerd's CRI metadata extension
// (io.cri-containerd.container.metadata: the CRI ContainerConfig, versioned JSON)
// that shutdown reads: the annotations the kubelet sets and the stop signal.
type criMetadata struct {
	Metadata struct {
		Config struct {
			Annotations map[string]string `json:"annotations"`
		}
		StopSignal string
	}
}

// stopSettings reads a container's grace period (the kubelet's
// io.kubernetes.pod.terminationGracePeriod annotation, capped at bound; 30 s when
// absent, as the API's default) and stop signal (SIGTERM unless the image sets
// another) from the CRI metadata extension.
func stopSettings(ext []byte, bound time.Duration) (time.Duration, syscall.Signal) {
	grace, sig := 30*time.Second, syscall.SIGTERM
	var md criMetadata
	if len(ext) > 0 && json.Unmarshal(ext, &md) == nil {
		if v, ok := md.Metadata.Config.Annotations["io.kubernetes.pod.terminationGracePeriod"]; ok {
			var s int64
			if _, err := fmt.Sscan(v, &s); err == nil && s >= 0 {
				grace = time.Duration(s) * time.Second
			}
		}
		if s := unix.SignalNum(strings.ToUpper(md.Metadata.StopSignal)); s != 0 {
			sig = s
		} else if s := unix.SignalNum("SIG" + strings.ToUpper(md.Metadata.StopSignal)); s != 0 {
			sig = s
		}
	}
	return min(grace, bound), sig
}

// exitReason says what an exit status of a container means.
func exitReason(code uint32) string {
	if code > 128 && code < 128+65 {
		return fmt.Sprintf("exit status %d: ended by %s", code, unix.SignalName(syscall.Signal(code-128)))
	}
	return fmt.Sprintf("exit status %d", code)
}

// stopPods stops every running container of the CRI's namespace: the pods' own
// containers first, each with its stop signal and grace period (in parallel), then
// the sandboxes.
func stopPods(bound time.Duration) {
	start := time.Now()
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	client, all, err := podContainers(ctx, containerdRunning)
	if err != nil {
		log.Printf("shutdown: pods not stopped: %v", err)
		return
	}
	defer client.Close()
	var apps, sandboxes []podContainer
	for _, c := range all {
		info, err := c.Info(ctx)
		if err != nil {
			continue
		}
		pc := podContainer{
			id:      c.ID(),
			pod:     info.Labels["io.kubernetes.pod.namespace"] + "/" + info.Labels["io.kubernetes.pod.name"],
			name:    info.Labels["io.kubernetes.container.name"],
			sandbox: info.Labels["io.cri-containerd.kind"] == "sandbox",
		}
		var ext []byte
		if any, ok := info.Extensions["io.cri-containerd.container.metadata"]; ok {
			ext = any.GetValue()
		}
		pc.grace, pc.signal = stopSettings(ext, bound)
		if pc.sandbox {
			sandboxes = append(sandboxes, pc)
		} else {
			apps = append(apps, pc)
		}
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].pod+apps[i].name < apps[j].pod+apps[j].name })
	stopped := stopContainers(ctx, client, apps)
	for i := range sandboxes {
		sandboxes[i].grace, sandboxes[i].signal = 0, syscall.SIGKILL
	}
	stopContainers(ctx, client, sandboxes)
	log.Printf("shutdown: %d pod containers stopped in %s", stopped, time.Since(start).Round(100*time.Millisecond))
}

// containerdWait bounds how long a shutdown waits for a containerd that is starting
// (the power button pressed just after a liveness or supervisor restart: measured, the
// pods were left to SIGKILL at power-off because containerd was not answering yet).
const containerdWait = 60 * time.Second

// containerdRunning tells whether containerd has a process (it may still be starting).
func containerdRunning() bool { return componentPid("containerd") != 0 }

// podContainers connects to containerd and lists the CRI's containers, retrying for up
// to containerdWait while running() says containerd has a process.
func podContainers(ctx context.Context, running func() bool) (*containerd.Client, []containerd.Container, error) {
	deadline := time.Now().Add(containerdWait)
	for {
		client, err := containerd.New("/run/containerd/containerd.sock", containerd.WithTimeout(5*time.Second))
		if err == nil {
			var all []containerd.Container
			if all, err = client.Containers(ctx); err == nil {
				return client, all, nil
			}
			client.Close()
			err = fmt.Errorf("list containers: %w", err)
		} else {
			err = fmt.Errorf("containerd: %w", err)
		}
		if !running() || time.Now().After(deadline) {
			return nil, nil, err
		}
		log.Printf("shutdown: waiting for containerd to answer (%v)", err)
		time.Sleep(2 * time.Second)
	}
}

// stopContainers stops the running tasks of cs in parallel and returns how many it stopped.
func stopContainers(ctx context.Context, client *containerd.Client, cs []podContainer) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	stopped := 0
	for _, pc := range cs {
		c, err := client.LoadContainer(ctx, pc.id)
		if err != nil {
			continue
		}
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue // no task: not running
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != containerd.Running {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			exited, err := task.Wait(ctx)
			if err != nil {
				log.Printf("shutdown: pod %s container %s: %v", pc.pod, pc.name, err)
				return
			}
			t0 := time.Now()
			if err := task.Kill(ctx, pc.signal); err != nil {
				log.Printf("shutdown: pod %s container %s: %s: %v", pc.pod, pc.name, unix.SignalName(pc.signal), err)
			}
			how := unix.SignalName(pc.signal)
			var es containerd.ExitStatus
			select {
			case es = <-exited:
			case <-time.After(pc.grace):
				_ = task.Kill(ctx, syscall.SIGKILL)
				how = fmt.Sprintf("%s, then SIGKILL after its %s grace period", how, pc.grace)
				es = <-exited
			}
			if !pc.sandbox {
				log.Printf("shutdown: pod %s container %s stopped (%s) after %s: %s",
					pc.pod, pc.name, how, time.Since(t0).Round(10*time.Millisecond), exitReason(es.ExitCode()))
			}
			mu.Lock()
			stopped++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return stopped
}
