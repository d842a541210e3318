package main

import (
	"net"
	"strings"
	"testing"
)

// The datastores' settings for power loss (README: the data disk): kine's
// SQLite syncs its WAL at every commit; etcd keeps its fsyncs.
func TestDatastoreDurability(t *testing.T) {
	dir := t.TempDir()
	p, err := ensurePKI(dir, "n", []net.IP{net.ParseIP("10.0.2.15")}, testCertLifetime)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: "n", data: dir, pki: p, components: []string{"kine", "etcd"}}
	kine, _ := n.args("kine")
	dsn := strings.Join(kine, " ")
	for _, want := range []string{"_journal_mode=WAL", "_synchronous=FULL"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("kine's DSN lacks %s: %s", want, dsn)
		}
	}
	if strings.Contains(dsn, "_synchronous=NORMAL") || strings.Contains(dsn, "_synchronous=OFF") {
		t.Errorf("kine's DSN syncs less than FULL: %s", dsn)
	}
	etcd, _ := n.args("etcd")
	for _, a := range etcd {
		if strings.HasPrefix(a, "--unsafe") || strings.HasPrefix(a, "--experimental-unsafe") {
			t.Errorf("etcd runs with %s", a)
		}
	}
}
