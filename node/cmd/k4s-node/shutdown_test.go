package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestShutdownOrderIsReverseWithKubeletFirst(t *testing.T) {
	for _, tc := range []struct{ started, want []string }{
		{
			[]string{"kine", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet", "flanneld", "coredns", "kube-proxy"},
			[]string{"kubelet", "containerd", "kube-proxy", "coredns", "flanneld", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "kine"},
		},
		{ // a worker
			[]string{"containerd", "kubelet", "flanneld", "kube-proxy"},
			[]string{"kubelet", "containerd", "kube-proxy", "flanneld"},
		},
		{ // no kubelet: reverse start order, the datastore last
			[]string{"etcd", "kube-apiserver"},
			[]string{"kube-apiserver", "etcd"},
		},
	} {
		if got := shutdownOrder(tc.started); !slices.Equal(got, tc.want) {
			t.Errorf("shutdownOrder(%v) = %v, want %v", tc.started, got, tc.want)
		}
	}
}

func TestStopBoundGivesTheDatastoreLonger(t *testing.T) {
	if stopBound("kine") != datastoreStopBound || stopBound("etcd") != datastoreStopBound ||
		stopBound("kube-apiserver") != apiserverStopBound || stopBound("kubelet") != componentStopBound {
		t.Fatal("stop bounds")
	}
}

func TestMountsUnderDeepestFirst(t *testing.T) {
	mountinfo := `22 1 0:20 / / rw - rootfs rootfs rw
30 22 0:25 / /proc rw,relatime - proc proc rw
40 22 253:0 / /var/lib/k4s rw,relatime - ext4 /dev/vda rw
41 22 253:0 /kubelet /var/lib/kubelet rw,relatime - ext4 /dev/vda rw
42 41 0:40 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~projected/kube-api-access-x rw - tmpfs tmpfs rw
43 22 253:0 /log /var/log rw,relatime - ext4 /dev/vda rw
44 22 0:41 / /var/library rw - tmpfs tmpfs rw
45 22 0:42 / /var/lib/with\040space rw - tmpfs tmpfs rw
46 22 0:43 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw,lowerdir=/var/lib/containerd/x
47 22 0:44 / /run rw - tmpfs tmpfs rw
`
	got := mountsUnder(mountinfo, stateMountPrefixes)
	want := []string{"/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs", "/var/lib/with space", "/var/log", "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~projected/kube-api-access-x", "/var/lib/kubelet", "/var/lib/k4s"}
	if !slices.Equal(got, want) {
		t.Fatalf("mountsUnder = %q, want %q", got, want)
	}
}

// criExtension is the JSON containerd's CRI plugin stores (versionedMetadata).
func criExtension(t *testing.T, annotations map[string]string, stopSignal string) []byte {
	v := map[string]any{"Version": "v1", "Metadata": map[string]any{
		"ID": "c1", "Name": "n", "Config": map[string]any{"annotations": annotations}, "StopSignal": stopSignal,
	}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStopSettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ext   []byte
		grace time.Duration
		sig   syscall.Signal
	}{
		{"no extension: the API's default grace", nil, 30 * time.Second, syscall.SIGTERM},
		{"pod's grace period", criExtension(t, map[string]string{"io.kubernetes.pod.terminationGracePeriod": "7"}, ""), 7 * time.Second, syscall.SIGTERM},
		{"capped at the bound", criExtension(t, map[string]string{"io.kubernetes.pod.terminationGracePeriod": "3600"}, ""), podStopBound, syscall.SIGTERM},
		{"zero", criExtension(t, map[string]string{"io.kubernetes.pod.terminationGracePeriod": "0"}, ""), 0, syscall.SIGTERM},
		{"image's stop signal", criExtension(t, nil, "SIGQUIT"), 30 * time.Second, syscall.SIGQUIT},
		{"stop signal without SIG", criExtension(t, nil, "int"), 30 * time.Second, syscall.SIGINT},
		{"garbage", []byte("{"), 30 * time.Second, syscall.SIGTERM},
	} {
		grace, sig := stopSettings(tc.ext, podStopBound)
		if grace != tc.grace || sig != tc.sig {
			t.Errorf("%s: stopSettings = %s, %v; want %s, %v", tc.name, grace, sig, tc.grace, tc.sig)
		}
	}
}

func TestExitReason(t *testing.T) {
	for code, want := range map[uint32]string{
		0:   "exit status 0",
		143: "exit status 143: ended by SIGTERM",
		137: "exit status 137: ended by SIGKILL",
		2:   "exit status 2",
	} {
		if got := exitReason(code); got != want {
			t.Errorf("exitReason(%d) = %q, want %q", code, got, want)
		}
	}
}

// A shutdown does not wait for a containerd that has no process: one attempt, its error.
func TestPodContainersGivesUpWithoutContainerd(t *testing.T) {
	asked := 0
	start := time.Now()
	_, _, err := podContainers(context.Background(), func() bool { asked++; return false })
	if err == nil || !strings.Contains(err.Error(), "containerd") {
		t.Fatalf("want a containerd error, got %v", err)
	}
	if asked != 1 || time.Since(start) > containerdWait/2 {
		t.Fatalf("asked %d times in %s: it waited for a containerd that is not running", asked, time.Since(start))
	}
}
