//go:build !k4s_download

package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/contract"

	"github.com/u-root/mkuimage/cpio"
)

// The operator's side of a cluster identity (`pants run` of an initramfs with
// `cluster_identity=True`), as `talosctl gen config` makes a Talos cluster's
// CA on the operator's machine: a directory outside Pants' caches (the rule
// passes <build root>/.k4s/clusters/<target>) holding
//
//	ca.crt, ca.key             the cluster CA, made once and reused
//	admin.crt, admin.key       a client certificate (O=system:masters)
//	admin.kubeconfig           for kubectl, pointing at the forwarded apiserver
//	join-token                 a bootstrap token (<id>.<secret>) with which agents join
//	identity.cpio              etc/k4s/identity/ca.{crt,key} and join-token: what the node gets
//	initrd.img                 the image, padded to 4 bytes, then identity.cpio
//
// The image built by Pants stays generic and cacheable and never holds a
// private key; the node (k4s-node) finds the CA in /etc/k4s/identity and
// signs its own leaf certificates with it.

const (
	caValidity       = 10 * 365 * 24 * time.Hour
	adminValidity    = 365 * 24 * time.Hour
	adminRenewBefore = 30 * 24 * time.Hour
)

// Request is what `k4stool vm` asks of prepareIdentity.
type Request struct {
	Dir      string // the identity directory (made 0700 if missing)
	Fresh    bool   // -new-identity: delete the directory's contents first
	Image    string // the initramfs built by Pants
	APIPort  int    // the guest's apiserver port
	HostPort int    // the host port forwarded to APIPort; 0 if none
	Target   string // the target's address, for messages ("" if unknown)
	Now      time.Time
	// Machine, if its Type is set, hands a Talos-style machine config
	// (controlplane.yaml, machineconfig.go) instead of the identity files.
	Machine MachineSettings
	// Extra are more files for the node's identity archive (-restore's snapshot).
	Extra []File
}

// Result names the files prepareIdentity wrote.
type Result struct {
	Dir        string
	Kubeconfig string
	Initrd     string
	CACreated  bool
}

// Prepare makes or reuses the CA and the admin certificate in
// req.Dir, writes the kubeconfig, identity.cpio and initrd.img, and returns
// their paths. Messages for the operator go to log.
func Prepare(req Request, log io.Writer) (*Result, error) {
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	dir, err := filepath.Abs(req.Dir)
	if err != nil {
		return nil, err
	}
	if req.Fresh {
		if err := emptyDir(dir); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	res := &Result{Dir: dir}
	p := func(name string) string { return filepath.Join(dir, name) }

	ca, caKey, created, err := loadOrCreateCA(dir, req.Now)
	if err != nil {
		return nil, err
	}
	res.CACreated = created
	adminCert, adminKey, err := loadOrCreateAdmin(dir, ca, caKey, req.Now)
	if err != nil {
		return nil, err
	}

	// The kubeconfig, every run: the forwarded port may have changed.
	port := req.HostPort
	if port == 0 {
		fmt.Fprintf(log, "k4s: warning: no -forward targets the guest apiserver port %d, so no host port "+
			"reaches the apiserver; %s names port %d anyway (add -forward <host port>:%d)\n",
			req.APIPort, p("admin.kubeconfig"), req.APIPort, req.APIPort)
		port = req.APIPort
	}
	kc := kubeconfig(filepath.Base(dir), fmt.Sprintf("https://127.0.0.1:%d", port), ca.Raw, adminCert, adminKey)
	if err := cli.WriteFileAtomic(p("admin.kubeconfig"), kc, 0o600); err != nil {
		return nil, err
	}
	res.Kubeconfig = p("admin.kubeconfig")

	token, err := loadOrCreateJoinToken(p(contract.JoinToken))
	if err != nil {
		return nil, identityErr(dir, err)
	}
	caPEM, err := os.ReadFile(p("ca.crt"))
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := os.ReadFile(p("ca.key"))
	if err != nil {
		return nil, err
	}
	files := []File{{contract.CACert, caPEM, 0o644}, {contract.CAKey, caKeyPEM, 0o600}, {contract.JoinToken, token, 0o600}}
	if req.Machine.Type != "" {
		mc := machineConfigYAML(req.Machine, token, caPEM, caKeyPEM, "")
		if err := cli.WriteFileAtomic(p("controlplane.yaml"), mc, 0o600); err != nil {
			return nil, err
		}
		files = []File{{contract.MachineConfig, mc, 0o600}}
	}
	files = append(files, req.Extra...)
	if res.Initrd, err = writeIdentityInitrd(dir, req.Image, files); err != nil {
		return nil, err
	}

	how := "new"
	if !created {
		how = "reused"
	}
	target := req.Target
	if target == "" {
		target = "<target>"
	}
	fmt.Fprintf(log, "k4s: cluster identity (CA %s): %s\n", how, dir)
	fmt.Fprintf(log, "k4s: admin kubeconfig: %s\n", res.Kubeconfig)
	fmt.Fprintf(log, "k4s:   export KUBECONFIG=%s; kubectl get nodes\n", res.Kubeconfig)
	fmt.Fprintf(log, "k4s: for a new identity: ./pants run %s -- -new-identity (or delete %s)\n", target, dir)
	return res, nil
}

// emptyDir deletes what dir holds, keeping dir itself (a missing dir is fine).
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// loadOrCreateCA returns the CA in dir, making one if ca.crt or ca.key is
// missing. A CA that is there but unusable is an error, not replaced: the
// operator may still have clients that trust it.
func loadOrCreateCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, bool, error) {
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if certErr == nil && keyErr == nil {
		cert, key, err := loadPair(certPath, keyPath)
		if err != nil {
			return nil, nil, false, identityErr(dir, err)
		}
		if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, nil, false, identityErr(dir, fmt.Errorf("%s is not a CA certificate", certPath))
		}
		if now.After(cert.NotAfter) {
			return nil, nil, false, identityErr(dir, fmt.Errorf("the CA in %s expired on %s", certPath, cert.NotAfter.Format(time.DateOnly)))
		}
		return cert, key, false, nil
	}
	if !errors.Is(certErr, fs.ErrNotExist) && certErr != nil {
		return nil, nil, false, certErr
	}
	if !errors.Is(keyErr, fs.ErrNotExist) && keyErr != nil {
		return nil, nil, false, keyErr
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "k4s-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, false, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, false, err
	}
	// The key first: a ca.crt without its key would be taken for a CA that
	// exists (and fail), a key without its certificate is made anew.
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, false, err
	}
	if err := cli.WriteFileAtomic(certPath, pemBytes("CERTIFICATE", der), 0o644); err != nil {
		return nil, nil, false, err
	}
	return cert, key, true, nil
}

// loadOrCreateAdmin returns admin.crt/admin.key, making them anew if missing,
// unreadable, expiring within 30 days, or not signed by ca.
func loadOrCreateAdmin(dir string, ca *x509.Certificate, caKey crypto.Signer, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	if cert, key, err := loadPair(certPath, keyPath); err == nil &&
		cert.CheckSignatureFrom(ca) == nil &&
		bytes.Equal(cert.RawIssuer, ca.RawSubject) &&
		now.Add(adminRenewBefore).Before(cert.NotAfter) &&
		!now.Before(cert.NotBefore) {
		return cert, key, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "k4s-admin", Organization: []string{"system:masters"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(adminValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := cli.WriteFileAtomic(certPath, pemBytes("CERTIFICATE", der), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func identityErr(dir string, err error) error {
	return cli.Errorf("E_IDENTITY", "%v. Fix or remove it: delete %s, or run with -new-identity "+
		"(`./pants run <target> -- -new-identity`) for a new cluster identity", err, dir)
}

// loadPair reads a PEM certificate and its ECDSA key (SEC 1 or PKCS#8) and
// checks that they belong together.
func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cp, _ := pem.Decode(cb)
	if cp == nil || cp.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s is not a PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	kp, _ := pem.Decode(kb)
	if kp == nil {
		return nil, nil, fmt.Errorf("%s is not a PEM private key", keyPath)
	}
	var key *ecdsa.PrivateKey
	if key, err = x509.ParseECPrivateKey(kp.Bytes); err != nil {
		k, err8 := x509.ParsePKCS8PrivateKey(kp.Bytes)
		ek, ok := k.(*ecdsa.PrivateKey)
		if err8 != nil || !ok {
			return nil, nil, fmt.Errorf("%s is not an ECDSA private key", keyPath)
		}
		key = ek
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not belong to %s", keyPath, certPath)
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pemBytes("EC PRIVATE KEY", der), nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	b, err := keyPEM(key)
	if err != nil {
		return err
	}
	return cli.WriteFileAtomic(path, b, 0o600)
}

// kubeconfig is a stock kubectl config with everything embedded. The names
// come from the identity directory's name (the target), so that merged
// kubeconfigs of several targets do not clash.
func kubeconfig(name, server string, caDER []byte, cert *x509.Certificate, key *ecdsa.PrivateKey) []byte {
	kp, err := keyPEM(key)
	if err != nil {
		panic(err) // a key this process made or parsed always marshals
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	cluster, user := "k4s-"+name, "k4s-"+name+"-admin"
	q := strconv.Quote // a YAML double-quoted scalar for these ASCII names
	var s strings.Builder
	fmt.Fprintf(&s, "apiVersion: v1\nkind: Config\n")
	fmt.Fprintf(&s, "clusters:\n- name: %s\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n",
		q(cluster), q(server), b64(pemBytes("CERTIFICATE", caDER)))
	fmt.Fprintf(&s, "users:\n- name: %s\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n",
		q(user), b64(pemBytes("CERTIFICATE", cert.Raw)), b64(kp))
	fmt.Fprintf(&s, "contexts:\n- name: %s\n  context:\n    cluster: %s\n    user: %s\n",
		q(cluster), q(cluster), q(user))
	fmt.Fprintf(&s, "current-context: %s\npreferences: {}\n", q(cluster))
	return []byte(s.String())
}

// File is a file of etc/k4s/identity for the node.
type File struct {
	Name string
	Data []byte
	Mode uint64
}

// writeIdentityInitrd writes identity.cpio (the files) and initrd.img (the
// image, then identity.cpio) into dir and returns initrd.img's path.
func writeIdentityInitrd(dir, image string, files []File) (string, error) {
	arch, err := identityArchive(files)
	if err != nil {
		return "", err
	}
	if err := cli.WriteFileAtomic(filepath.Join(dir, "identity.cpio"), arch, 0o600); err != nil {
		return "", err
	}
	initrd := filepath.Join(dir, "initrd.img")
	return initrd, writeInitrd(initrd, image, arch)
}

// identityArchive is the newc cpio the node gets: etc, etc/k4s,
// etc/k4s/identity (0700) and the files (the CA's certificate 0644, its key
// and the join token 0600). Reproducible like the image's records: mtime 0,
// uid/gid 0, inodes 1..n. The directories' modes match the image's, since the
// kernel applies an archive's mode to a directory that already exists.
func identityArchive(files []File) ([]byte, error) {
	recs := []cpio.Record{
		cpio.Directory("etc", 0o755),
		cpio.Directory("etc/k4s", 0o755),
		cpio.Directory(contract.Dir, 0o700),
	}
	for _, f := range files {
		recs = append(recs, cpio.StaticRecord(f.Data, cpio.Info{Name: contract.Dir + "/" + f.Name, Mode: cpio.S_IFREG | f.Mode}))
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for i, r := range recs {
		r = cpio.MakeReproducible(r)
		r.Ino = uint64(i + 1)
		r.NLink = 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		if err := w.WriteRecord(r); err != nil {
			return nil, err
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeInitrd writes the image, zero bytes up to a multiple of 4, then the
// identity archive. Linux unpacks concatenated archives (the first may be
// compressed; a decompressor reports where its stream ends), skipping zero
// bytes between them, but takes a '0' as the start of a cpio header only at
// an offset that is a multiple of 4 (init/initramfs.c, unpack_to_rootfs:
// `*buf == '0' && !(this_header & 3)`), so the second archive must start there.
func writeInitrd(path, image string, arch []byte) error {
	in, err := os.Open(image)
	if err != nil {
		return err
	}
	defer in.Close()
	return cli.WriteAtomic(path, 0o600, func(w io.Writer) error {
		n, err := io.Copy(w, in)
		if err != nil {
			return err
		}
		if pad := (4 - n%4) % 4; pad != 0 {
			if _, err := w.Write(make([]byte, pad)); err != nil {
				return err
			}
		}
		_, err = w.Write(arch)
		return err
	})
}
