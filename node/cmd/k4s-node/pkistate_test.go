package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// On a data disk the state directory outlives a boot: a second ensurePKI keeps
// the CA, the service-account key and the front-proxy CA, and signs new leaves.
func TestEnsurePKIKeepsKeysAcrossBoots(t *testing.T) {
	dir := t.TempDir()
	ips := []net.IP{net.ParseIP("10.0.2.15")}
	if _, err := ensurePKI(dir, "n", ips, testCertLifetime); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	kept := []string{"ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key"}
	before := map[string][]byte{}
	for _, f := range append(kept, "admin.crt") {
		before[f] = read(f)
	}
	if _, err := ensurePKI(dir, "n", ips, testCertLifetime); err != nil {
		t.Fatal(err)
	}
	for _, f := range kept {
		if !bytes.Equal(before[f], read(f)) {
			t.Errorf("%s changed at the second boot", f)
		}
	}
	if bytes.Equal(before["admin.crt"], read("admin.crt")) {
		t.Errorf("admin.crt was not signed again")
	}
	// A diskless boot (an empty directory) makes new ones.
	other := t.TempDir()
	if _, err := ensurePKI(other, "n", ips, testCertLifetime); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "sa.key")); bytes.Equal(b, before["sa.key"]) {
		t.Errorf("a fresh directory reused a key")
	}
}

// A CA whose key is not its own is refused with what to do, not silently replaced.
func TestLoadCAMismatch(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if _, err := ensurePKI(d, "n", nil, testCertLifetime); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := loadCA(filepath.Join(a, "ca.crt"), filepath.Join(b, "ca.key"))
	if err == nil || !strings.Contains(err.Error(), "delete both") {
		t.Errorf("mismatched CA: %v", err)
	}
	if c, k, err := loadCA(filepath.Join(a, "none.crt"), filepath.Join(a, "ca.key")); c != nil || k != nil || err != nil {
		t.Errorf("missing CA: %v %v %v", c, k, err)
	}
}

// testCertLifetime is the leaf certificates' default lifetime (-cert-lifetime).
const testCertLifetime = 365 * 24 * time.Hour
