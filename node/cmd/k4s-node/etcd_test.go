package main

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// With etcd in the component table the apiserver talks TLS to etcd on
// 127.0.0.1 with its own client certificate; without, kine's unix socket.
func TestDatastoreArgs(t *testing.T) {
	dir := t.TempDir()
	p, err := ensurePKI(dir, "cp-1", []net.IP{net.ParseIP("192.168.76.1")}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: "cp-1", data: dir, pki: p, components: []string{"etcd", "kube-apiserver"}}
	args, err := n.args("kube-apiserver")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"--etcd-servers=https://127.0.0.1:2379", "--etcd-certfile=" + p.path("apiserver-etcd-client.crt")} {
		if !strings.Contains(joined, want) {
			t.Errorf("apiserver args lack %s: %s", want, joined)
		}
	}
	etcd, _ := n.args("etcd")
	for _, want := range []string{"--client-cert-auth=true", "--listen-client-urls=https://127.0.0.1:2379", "--peer-client-cert-auth=true"} {
		if !slices.Contains(etcd, want) {
			t.Errorf("etcd args lack %s: %v", want, etcd)
		}
	}
	data, _ := os.ReadFile(p.path("etcd.crt"))
	b, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("etcd certificate usages %v", cert.ExtKeyUsage)
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	n.components = []string{"kine", "kube-apiserver"}
	args, _ = n.args("kube-apiserver")
	if !slices.Contains(args, "--etcd-servers=unix://"+kineSocket(n)) {
		t.Errorf("with kine: %v", args)
	}
}
