package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRenewAt(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ lifetime, want time.Duration }{
		{365 * 24 * time.Hour, 365 * 24 * time.Hour * 2 / 3}, // ~2/3 of a year
		{30 * time.Minute, 20 * time.Minute},
		{15 * time.Minute, 9 * time.Minute}, // 2/3 would leave 5 min: reloadWindow (6 min) before expiry
		{10 * time.Minute, 4 * time.Minute}, // the shortest lifetime
	} {
		if got := renewAt(issued, issued.Add(c.lifetime)).Sub(issued); got != c.want {
			t.Errorf("lifetime %s: renewal after %s, want %s", c.lifetime, got, c.want)
		}
	}
}

func TestCertLifetimeFlag(t *testing.T) {
	if err := checkCertLifetime(9 * time.Minute); err == nil || !strings.Contains(err.Error(), "k4s.cert-lifetime=") {
		t.Fatalf("9m: %v", err)
	}
	if err := checkCertLifetime(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := ensurePKI(t.TempDir(), "n", nil, time.Minute); err == nil {
		t.Fatal("ensurePKI accepted a 1-minute lifetime")
	}
}

// loadLeaf reads <name>.crt and checks it against its key.
func loadLeaf(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func certPool(t *testing.T, path string) *x509.CertPool {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	b, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(c)
	return pool
}

// Renewal reissues every leaf in place: new keys, new NotAfter, still signed
// by the same CAs, with the same names.
func TestLeavesAreRenewedInPlace(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	p, err := ensurePKI(dir, "cp-1", []net.IP{net.ParseIP("192.168.76.1")}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	roots, fpRoots := certPool(t, filepath.Join(dir, "ca.crt")), certPool(t, filepath.Join(dir, "front-proxy-ca.crt"))
	before := map[string]*x509.Certificate{}
	for _, l := range leafCerts("cp-1") {
		c := loadLeaf(t, dir, l.name)
		if d := c.NotAfter.Sub(start); d < 9*time.Minute || d > 11*time.Minute {
			t.Errorf("%s: NotAfter %s after issue, want 10m", l.name, d)
		}
		before[l.name] = c
	}
	if p.renewalDue(start.Add(3 * time.Minute)) {
		t.Error("due after 3 of 10 minutes")
	}
	if !p.renewalDue(start.Add(4*time.Minute + time.Second)) {
		t.Error("not due 4 minutes into a 10-minute lifetime (6 minutes before expiry)")
	}
	// A clock set back (NTP after a wrong RTC) before the leaves' NotBefore: due at once.
	if !p.renewalDue(start.Add(-2 * time.Hour)) {
		t.Error("not due when the clock is before the leaves' NotBefore")
	}

	later := start.Add(5 * time.Minute)
	if err := p.issueLeaves(later); err != nil {
		t.Fatal(err)
	}
	if p.renewalDue(later.Add(time.Minute)) {
		t.Error("due right after a renewal")
	}
	for _, l := range leafCerts("cp-1") {
		c, old := loadLeaf(t, dir, l.name), before[l.name]
		if got := c.NotAfter.Sub(old.NotAfter).Round(time.Second); got != 5*time.Minute {
			t.Errorf("%s: NotAfter moved by %s, want 5m", l.name, got)
		}
		if c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(old.PublicKey) {
			t.Errorf("%s: renewed with the same key", l.name)
		}
		if c.Subject.String() != old.Subject.String() || strings.Join(c.DNSNames, ",") != strings.Join(old.DNSNames, ",") ||
			len(c.IPAddresses) != len(old.IPAddresses) {
			t.Errorf("%s: names changed: %s %v %v", l.name, c.Subject, c.DNSNames, c.IPAddresses)
		}
		pool := roots
		if l.frontProxy {
			pool = fpRoots
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: later, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: %v", l.name, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.new")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// k4s-node's own client presents the certificate on disk at each handshake.
func TestClientCertFollowsItsFiles(t *testing.T) {
	dir := t.TempDir()
	p, err := ensurePKI(dir, "cp-1", nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c := &clientCert{certFile: p.path("admin.crt"), keyFile: p.path("admin.key")}
	first, err := c.get(nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.get(nil); again != first {
		t.Error("reloaded unchanged files")
	}
	if err := p.issueLeaves(time.Now()); err != nil {
		t.Fatal(err)
	}
	// Make the change visible on file systems with coarse timestamps.
	os.Chtimes(p.path("admin.crt"), time.Now(), time.Now().Add(time.Second))
	second, err := c.get(nil)
	if err != nil || string(second.Certificate[0]) == string(first.Certificate[0]) {
		t.Fatalf("the renewed certificate was not read: %v", err)
	}
}

func TestJoinTokenSecretExpires(t *testing.T) {
	j := &join{tokenID: "abcdef", tokenSecret: "0123456789abcdef"}
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	d := tokenSecretData(j, 24*time.Hour, now)
	if d["expiration"] != "2026-12-08T05:00:00Z" || d["token-id"] != "abcdef" || d["usage-bootstrap-authentication"] != "true" {
		t.Fatalf("24h: %v", d)
	}
	if _, ok := tokenSecretData(j, 0, now)["expiration"]; ok {
		t.Fatal("ttl 0 must not expire")
	}
	// The Secret the server creates carries it.
	n := &node{join: j, tokenTTL: time.Hour}
	sec := n.joinAddons()[0].obj["stringData"].(map[string]any)
	exp, err := time.Parse(time.RFC3339, sec["expiration"].(string))
	if err != nil || exp.Sub(time.Now()) > time.Hour || exp.Sub(time.Now()) < 59*time.Minute {
		t.Fatalf("the join token Secret's expiration: %v, %v", sec["expiration"], err)
	}
}
