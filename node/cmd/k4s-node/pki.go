package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the node's certificate authority and the certificates the
// components need, generated on first boot (like k3s does) into dir. The
// leaf certificates live `lifetime` (-cert-lifetime) and are renewed before
// they expire (renew.go).
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  crypto.Signer
	// The front-proxy CA, which signs front-proxy-client (kept for renewals).
	fpCert *x509.Certificate
	fpKey  crypto.Signer

	nodeName    string
	serverIPs   []net.IP
	lifetime    time.Duration
	issued      time.Time // when the current leaves were issued (wall clock)
	leafExpires time.Time // their NotAfter
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	return key, der, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// ensurePKI writes the leaf certificates the components need, on every boot,
// signed by the cluster CA handed to the node
// (identity.go). Without one it makes a CA of its own and says so: the
// cluster then works, but nobody outside the node holds credentials for it.
func ensurePKI(dir, nodeName string, ips []net.IP, lifetime time.Duration) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkCertLifetime(lifetime); err != nil {
		return nil, err
	}
	p := &pki{dir: dir, nodeName: nodeName, lifetime: lifetime,
		serverIPs: append([]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP)}, ips...)}
	cert, key, err := loadIdentity(identityDir)
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-certBackdate)
	if cert != nil {
		p.caCert, p.caKey = cert, key
		if err := writePEM(p.path("ca.crt"), "CERTIFICATE", cert.Raw, 0o644); err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := writePEM(p.path("ca.key"), "PRIVATE KEY", der, 0o600); err != nil {
			return nil, err
		}
	} else if p.caCert, p.caKey, err = loadCA(p.path("ca.crt"), p.path("ca.key")); err != nil {
		return nil, err // a CA of its own from an earlier boot, on the data disk (pkistate.go)
	} else if p.caCert == nil {
		log.Printf("no cluster identity in %s: this node makes a CA of its own, and nobody "+
			"outside it has credentials for its apiserver. Boot it with `pants run` of an initramfs "+
			"with cluster_identity=True, or hand it ca.crt and ca.key there (README: Cluster identity).", identityDir)
		key, der, err := newKey()
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: "k4s-ca"},
			NotBefore:             now,
			NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, err
		}
		if p.caCert, err = x509.ParseCertificate(caDER); err != nil {
			return nil, err
		}
		p.caKey = key
		if err := writePEM(p.path("ca.crt"), "CERTIFICATE", caDER, 0o644); err != nil {
			return nil, err
		}
		if err := writePEM(p.path("ca.key"), "EC PRIVATE KEY", der, 0o600); err != nil {
			return nil, err
		}
	}

	// Service-account token signing key pair.
	saKey, saDER, err := loadOrNewKey(p.path("sa.key")) // kept on a data disk
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.path("sa.key"), "EC PRIVATE KEY", saDER, 0o600); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.path("sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
		return nil, err
	}

	// The front-proxy CA (as kubeadm makes one): it signs the apiserver's client
	// certificate for aggregated APIs, and components read it from the
	// extension-apiserver-authentication ConfigMap. Kept on a data disk (pkistate.go).
	fpCert, fpKey, err := frontProxyCA(p, now)
	if err != nil {
		return nil, err
	}
	p.fpCert, p.fpKey = fpCert, fpKey
	if err := p.issueLeaves(time.Now()); err != nil {
		return nil, err
	}
	return p, nil
}

// leafCert is one leaf certificate of the node's PKI: <name>.crt and <name>.key.
type leafCert struct {
	name, cn   string
	orgs       []string
	server     bool
	frontProxy bool // signed by the front-proxy CA
}

// leafCerts are the certificates the server's components use.
func leafCerts(nodeName string) []leafCert {
	return []leafCert{
		{"front-proxy-client", "front-proxy-client", nil, false, true},
		{"apiserver", "kube-apiserver", nil, true, false},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, false, false},
		{"admin", "k4s-admin", []string{"system:masters"}, false, false},
		{"controller-manager", "system:kube-controller-manager", nil, false, false},
		{"scheduler", "system:kube-scheduler", nil, false, false},
		{"kube-proxy", "system:kube-proxy", nil, false, false},
		{"coredns", corednsUser, nil, false, false},
		{"flannel", flannelUser, nil, false, false},
		{"kube-router", kubeRouterUser, nil, false, false},
		{netpolComponent, netpolUser, nil, false, false},
		{"kubelet", "system:node:" + nodeName, []string{"system:nodes"}, false, false},
		{"kubelet-serving", "system:node:" + nodeName, []string{"system:nodes"}, true, false},
		// etcd (talos-like, k0s-like): its server and peer certificate, and the
		// apiserver's client certificate for it (kubeadm makes a separate etcd CA;
		// here the cluster CA signs them, and etcd listens on 127.0.0.1 only).
		{"etcd", "etcd", nil, true, false},
		{"apiserver-etcd-client", "kube-apiserver-etcd-client", nil, false, false},
	}
}

// issueLeaves writes every leaf certificate with a new key, valid from
// certBackdate before now for p.lifetime after now. Each file is replaced
// atomically (a component reloading it reads the old or the new one, never
// half of one); the key is written before its certificate.
func (p *pki) issueLeaves(now time.Time) error {
	now = now.Round(0) // the wall clock only: renewal compares with it after clock steps
	serverNames := []string{"localhost", p.nodeName, "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	notAfter := now.Add(p.lifetime)
	for _, l := range leafCerts(p.nodeName) {
		k, kDER, err := newKey()
		if err != nil {
			return err
		}
		t := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: l.cn, Organization: l.orgs},
			NotBefore:    now.Add(-certBackdate),
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if l.server {
			t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			if l.name == "etcd" { // etcd's peer connections authenticate with it as a client too
				t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
			}
			t.DNSNames, t.IPAddresses = serverNames, p.serverIPs
		}
		issuer, issuerKey := p.caCert, p.caKey
		if l.frontProxy {
			issuer, issuerKey = p.fpCert, p.fpKey
		}
		cDER, err := x509.CreateCertificate(rand.Reader, t, issuer, k.Public(), issuerKey)
		if err != nil {
			return fmt.Errorf("%s certificate: %w", l.name, err)
		}
		if err := writePEMAtomic(p.path(l.name+".key"), "EC PRIVATE KEY", kDER, 0o600); err != nil {
			return err
		}
		if err := writePEMAtomic(p.path(l.name+".crt"), "CERTIFICATE", cDER, 0o644); err != nil {
			return err
		}
	}
	p.issued, p.leafExpires = now, notAfter
	return nil
}

// writePEMAtomic replaces path with a PEM file through a rename in the same
// directory.
func writePEMAtomic(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".new"
	if err := writePEM(tmp, typ, der, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// kubeconfig writes a kubeconfig for a client certificate of the PKI.
func (p *pki) kubeconfig(path, cert, server string) error {
	return writeKubeconfig(path, p.path("ca.crt"), server, cert,
		fmt.Sprintf("client-certificate: %s\n    client-key: %s", p.path(cert+".crt"), p.path(cert+".key")))
}

// writeKubeconfig writes a kubeconfig for one server and one user, whose
// credentials are the lines under `user:` (a client certificate, a token).
func writeKubeconfig(path, caFile, server, user, credentials string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: k4s
  cluster:
    certificate-authority: %s
    server: %s
users:
- name: %s
  user:
    %s
contexts:
- name: k4s
  context: {cluster: k4s, user: %s}
current-context: k4s
`, caFile, server, user, credentials, user)
	return os.WriteFile(path, []byte(cfg), 0o600)
}
