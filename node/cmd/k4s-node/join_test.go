package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func csrPEM(t *testing.T, tmpl *x509.CertificateRequest) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// Only a node's own serving certificate request is approved.
func TestServingCSRProblem(t *testing.T) {
	node := pkix.Name{CommonName: "system:node:agent-1", Organization: []string{"system:nodes"}}
	ips := []net.IP{net.ParseIP("192.168.76.2")}
	good := csrPEM(t, &x509.CertificateRequest{Subject: node, IPAddresses: ips, DNSNames: []string{"agent-1"}})
	addrs := []nodeAddress{{"InternalIP", "192.168.76.2"}, {"Hostname", "agent-1"}}
	if p := servingCSRProblem(good, "system:node:agent-1", addrs); p != "" {
		t.Errorf("good CSR refused: %s", p)
	}
	// Names that are not the node's own (its status.addresses).
	for name, a := range map[string][]nodeAddress{
		"another IP":       {{"InternalIP", "192.168.76.1"}, {"Hostname", "agent-1"}},
		"another hostname": {{"InternalIP", "192.168.76.2"}, {"Hostname", "server"}},
		"no addresses":     nil,
	} {
		if p := servingCSRProblem(good, "system:node:agent-1", a); p == "" {
			t.Errorf("CSR approved for a node with %s", name)
		}
	}
	for name, c := range map[string]struct {
		csr  []byte
		user string
	}{
		"another node's":    {good, "system:node:server"},
		"a non-node's":      {good, "system:serviceaccount:default:x"},
		"no system:nodes O": {csrPEM(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:agent-1"}, IPAddresses: ips}), "system:node:agent-1"},
		"no names":          {csrPEM(t, &x509.CertificateRequest{Subject: node}), "system:node:agent-1"},
		"e-mail names":      {csrPEM(t, &x509.CertificateRequest{Subject: node, IPAddresses: ips, EmailAddresses: []string{"a@b"}}), "system:node:agent-1"},
		"not PEM":           {[]byte("x"), "system:node:agent-1"},
	} {
		if p := servingCSRProblem(c.csr, c.user, addrs); p == "" {
			t.Errorf("%s CSR approved", name)
		}
	}
}

func TestLoadJoin(t *testing.T) {
	dir := t.TempDir()
	if j, err := loadJoin(dir); j != nil || err != nil {
		t.Fatalf("no join material: %v, %v", j, err)
	}
	write := func(name, data string) { os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600) }
	write("join-token", "abcdef.0123456789abcdef\n")
	j, err := loadJoin(dir)
	if err != nil || j.server != "" || j.token() != "abcdef.0123456789abcdef" {
		t.Fatalf("server side: %+v, %v", j, err)
	}
	write("server", "https://192.168.76.1:6443")
	if _, err := loadJoin(dir); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Errorf("agent without ca.crt: %v", err)
	}
	write("ca.crt", "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n")
	if j, err := loadJoin(dir); err != nil || j.server != "https://192.168.76.1:6443" {
		t.Errorf("agent: %+v, %v", j, err)
	}
	write("ca.key", "x")
	if _, err := loadJoin(dir); err == nil || !strings.Contains(err.Error(), "ca.key") {
		t.Errorf("agent with the CA key: %v", err)
	}
	os.Remove(filepath.Join(dir, "ca.key"))
	for _, bad := range []string{"abc.def", "ABCDEF.0123456789abcdef", "abcdef0123456789abcdefg"} {
		write("join-token", bad)
		if _, err := loadJoin(dir); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
	write("join-token", "abcdef.0123456789abcdef")
	write("server", "192.168.76.1:6443")
	if _, err := loadJoin(dir); err == nil {
		t.Error("a server that is not an https URL was accepted")
	}
}

// The agent's bootstrap kubeconfig and a PKI kubeconfig share one writer.
func TestKubeconfigs(t *testing.T) {
	dir := t.TempDir()
	n := &node{data: dir, join: &join{tokenID: "abcdef", tokenSecret: "0123456789abcdef", server: "https://192.168.76.1:6443", caPEM: []byte(testCrt)}}
	if err := n.configureAgent(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "bootstrap.kubeconfig"))
	want := "apiVersion: v1\nkind: Config\nclusters:\n- name: k4s\n  cluster:\n    certificate-authority: " + n.pki.path("ca.crt") +
		"\n    server: https://192.168.76.1:6443\nusers:\n- name: bootstrap\n  user:\n    token: abcdef.0123456789abcdef\n" +
		"contexts:\n- name: k4s\n  context: {cluster: k4s, user: bootstrap}\ncurrent-context: k4s\n"
	if string(got) != want {
		t.Errorf("bootstrap.kubeconfig:\n%s\nwant:\n%s", got, want)
	}
	p := &pki{dir: dir}
	if err := p.kubeconfig(filepath.Join(dir, "kp.kubeconfig"), "kube-proxy", "https://127.0.0.1:6443"); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(filepath.Join(dir, "kp.kubeconfig"))
	if !strings.Contains(string(got), "- name: kube-proxy\n  user:\n    client-certificate: "+p.path("kube-proxy.crt")+"\n    client-key: "+p.path("kube-proxy.key")+"\n") {
		t.Errorf("kube-proxy kubeconfig:\n%s", got)
	}
}
