package main

// Memory the kubelet keeps from pods (kubelet.yaml: systemReserved, kubeReserved,
// enforceNodeAllocatable: pods): the kubelet sets the pods' cgroup (kubepods)
// memory.max to what is left, so a pod that allocates until it is killed is killed
// inside that cgroup, and never takes the control plane's memory.

import (
	"fmt"
	"log"
	"os"
	"strings"
)

const mib = int64(1) << 20

// memoryReservation splits a machine's RAM (total) given what is in use before any
// component starts (used: the kernel and the initramfs, which is RAM): system gets
// that plus 64 MiB of headroom, kube (the node's components, whose Go heaps
// GOMEMLIMIT bounds as a share of RAM) the larger of 384 MiB (their RssAnon at Ready
// adds up to ~360 MiB in 1 GiB) and a quarter of RAM. Together they leave pods at
// least a fifth of RAM: on a machine too small for both, kube shrinks first.
func memoryReservation(total, used int64) (system, kube int64) {
	system = used + 64*mib
	kube = max(384*mib, total/4)
	if limit := total - total/5; system+kube > limit {
		kube = max(limit-system, 0)
		if system > limit {
			system = limit
		}
	}
	return system / mib * mib, kube / mib * mib
}

// kubeletReservation is kubelet.yaml's lines for memoryReservation on this machine.
func kubeletReservation() string {
	total, avail := meminfo("MemTotal:"), meminfo("MemAvailable:")
	if total <= 0 || avail <= 0 {
		return "# no /proc/meminfo: no memory reserved for the node's components"
	}
	system, kube := memoryReservation(total, bootMemoryUsed(total-avail))
	log.Printf("memory reserved from pods: %d MiB for the system, %d MiB for the node's components; pods get at most %d MiB of %d MiB",
		system/mib, kube/mib, (total-system-kube)/mib, total/mib)
	return fmt.Sprintf("systemReserved: {memory: %dMi}\nkubeReserved: {memory: %dMi}\nenforceNodeAllocatable: [pods]", system/mib, kube/mib)
}

// meminfo is a /proc/meminfo field, in bytes.
func meminfo(field string) int64 {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			var kb int64
			fmt.Sscan(f[1], &kb)
			return kb * 1024
		}
	}
	return 0
}

// bootMemoryFile keeps, for this boot (/run is a tmpfs), the memory in use before the
// first component started: a supervisor restarted by the guardian (guardian.go)
// finds the components and pods running, and must reserve what the first one did.
const bootMemoryFile = "/run/k4s/memory-used-at-start"

func bootMemoryUsed(now int64) int64 {
	if data, err := os.ReadFile(bootMemoryFile); err == nil {
		var used int64
		if _, err := fmt.Sscan(string(data), &used); err == nil && used > 0 {
			return used
		}
	}
	if err := os.MkdirAll("/run/k4s", 0o755); err == nil {
		_ = os.WriteFile(bootMemoryFile, []byte(fmt.Sprint(now)), 0o644)
	}
	return now
}
