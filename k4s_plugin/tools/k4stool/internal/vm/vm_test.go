//go:build !k4s_download

package vm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k4s.dev/tools/k4stool/internal/cli"
)

func TestForwards(t *testing.T) {
	got, err := parseForwards([]string{"6443:6443", "8080:80", "16443:6443"})
	if err != nil {
		t.Fatal(err)
	}
	want := []forward{{16443, 6443}, {8080, 80}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("forwards %v, want %v", got, want)
	}
	for _, bad := range [][]string{{"6443"}, {"a:1"}, {"0:1"}, {"1:70000"}, {"1:2", "1:3"}} {
		if _, err := parseForwards(bad); err == nil {
			t.Errorf("parseForwards(%q) accepted", bad)
		}
	}
}

func TestLanNetdev(t *testing.T) {
	args, err := lanNetdev("17001:17002")
	if err != nil || len(args) != 4 || args[1] != "socket,id=n1,udp=127.0.0.1:17002,localaddr=127.0.0.1:17001" ||
		args[3] != "virtio-net-pci,netdev=n1,mac=52:54:00:4b:42:69" {
		t.Errorf("lanNetdev = %v, %v", args, err)
	}
	for _, bad := range []string{"17001", "a:b", "0:1", "5:5", "1:70000"} {
		if _, err := lanNetdev(bad); cli.Code(err) != "E_USAGE" {
			t.Errorf("lanNetdev(%q) = %v", bad, err)
		}
	}
}

func TestAccelCacheKeyFollowsTheKernelsContent(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("sandbox-1/__k4s_kernel/vmlinuz", "kernel A")
	b := write("sandbox-2/__k4s_kernel/vmlinuz", "kernel A")
	c := write("sandbox-3/__k4s_kernel/vmlinuz", "kernel C")
	ka, kb, kc := accelCacheKey("6.1", "/usr/bin/qemu-system-x86_64", a), accelCacheKey("6.1", "/usr/bin/qemu-system-x86_64", b), accelCacheKey("6.1", "/usr/bin/qemu-system-x86_64", c)
	if ka != kb {
		t.Errorf("the same kernel at two sandbox paths: keys %q and %q differ", ka, kb)
	}
	if ka == kc {
		t.Errorf("two different kernels share the key %q", ka)
	}
	if strings.Contains(ka, "/") || strings.Contains(ka, "sandbox") {
		t.Errorf("key %q carries the path", ka)
	}
	if got := accelCacheKey("6.1", "q", filepath.Join(dir, "missing")); !strings.Contains(got, "missing") {
		t.Errorf("an unreadable kernel keys by its path: %q", got)
	}
}
