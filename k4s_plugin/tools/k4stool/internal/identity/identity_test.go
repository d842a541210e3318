//go:build !k4s_download

package identity

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/u-root/mkuimage/cpio"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/contract"
)

// newIdentity runs prepareIdentity on a fake image of imageLen bytes.
func newIdentity(t *testing.T, dir string, imageLen int, fresh bool, hostPort int) (*Result, string) {
	t.Helper()
	image := filepath.Join(t.TempDir(), "initramfs.cpio")
	img := bytes.Repeat([]byte{0xa5}, imageLen)
	if err := os.WriteFile(image, img, 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	res, err := Prepare(Request{
		Dir: dir, Fresh: fresh, Image: image, APIPort: 6443, HostPort: hostPort, Target: "p:initramfs",
	}, &log)
	if err != nil {
		t.Fatalf("prepareIdentity: %v\n%s", err, log.String())
	}
	return res, log.String()
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := pem.Decode(b)
	if p == nil || p.Type != "CERTIFICATE" {
		t.Fatalf("%s: not a PEM certificate", path)
	}
	c, err := x509.ParseCertificate(p.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIdentityChainAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clusters", "p.initramfs")
	res, log := newIdentity(t, dir, 1001, false, 6443)
	if !res.CACreated {
		t.Error("first run did not create a CA")
	}
	ca, admin := readCert(t, filepath.Join(dir, "ca.crt")), readCert(t, filepath.Join(dir, "admin.crt"))
	if ca.Subject.CommonName != "k4s-ca" || !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 ||
		ca.KeyUsage&x509.KeyUsageCRLSign == 0 || ca.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Errorf("CA: CN %q IsCA %v KeyUsage %b", ca.Subject.CommonName, ca.IsCA, ca.KeyUsage)
	}
	if d := time.Until(ca.NotAfter); d < 9*365*24*time.Hour {
		t.Errorf("CA valid for only %s", d)
	}
	if ca.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA key is %s, not ECDSA", ca.PublicKeyAlgorithm)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin.crt does not verify against ca.crt for client auth: %v", err)
	}
	if admin.Subject.CommonName != "k4s-admin" || len(admin.Subject.Organization) != 1 || admin.Subject.Organization[0] != "system:masters" {
		t.Errorf("admin subject %v, want CN=k4s-admin O=system:masters", admin.Subject)
	}
	if d := time.Until(admin.NotAfter); d < 360*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("admin valid for %s, want a year", d)
	}
	if _, _, err := loadPair(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")); err != nil {
		t.Errorf("admin pair: %v", err)
	}

	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("identity directory mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
	for name, want := range map[string]os.FileMode{
		"ca.key": 0o600, "admin.key": 0o600, "admin.kubeconfig": 0o600, "identity.cpio": 0o600,
		"initrd.img": 0o600, "ca.crt": 0o644, "admin.crt": 0o644, contract.JoinToken: 0o600,
	} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if st.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 8 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("identity directory holds %v, want the 8 files (no temporary files left)", names)
	}
	kc := res.Kubeconfig
	for _, want := range []string{
		"k4s: admin kubeconfig: " + kc + "\n",
		"k4s:   export KUBECONFIG=" + kc + "; kubectl get nodes\n",
		"./pants run p:initramfs -- -new-identity",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("messages lack %q:\n%s", want, log)
		}
	}
}

func TestIdentityReuseAndNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "id")
	newIdentity(t, dir, 100, false, 6443)
	ca1, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	key1, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	admin1, _ := os.ReadFile(filepath.Join(dir, "admin.crt"))

	res, _ := newIdentity(t, dir, 100, false, 6443)
	ca2, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	key2, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	admin2, _ := os.ReadFile(filepath.Join(dir, "admin.crt"))
	if res.CACreated || !bytes.Equal(ca1, ca2) || !bytes.Equal(key1, key2) {
		t.Error("a second run replaced the CA")
	}
	if !bytes.Equal(admin1, admin2) {
		t.Error("a second run replaced a valid admin certificate")
	}

	// An admin certificate from another CA (the CA files were replaced) is remade.
	other := filepath.Join(t.TempDir(), "other")
	newIdentity(t, other, 100, false, 6443)
	for _, f := range []string{"ca.crt", "ca.key"} {
		b, _ := os.ReadFile(filepath.Join(other, f))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	newIdentity(t, dir, 100, false, 6443)
	admin3, _ := os.ReadFile(filepath.Join(dir, "admin.crt"))
	if bytes.Equal(admin2, admin3) || readCert(t, filepath.Join(dir, "admin.crt")).CheckSignatureFrom(readCert(t, filepath.Join(dir, "ca.crt"))) != nil {
		t.Error("an admin certificate of another CA was kept")
	}

	// -new-identity: a new CA, and the directory's other contents are gone.
	stray := filepath.Join(dir, "stray")
	if err := os.WriteFile(stray, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res, _ = newIdentity(t, dir, 100, true, 6443)
	ca4, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if !res.CACreated || bytes.Equal(ca4, ca2) || bytes.Equal(ca4, ca1) {
		t.Error("-new-identity kept the CA")
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Error("-new-identity left the directory's other files")
	}
}

func TestIdentityAdminRenewal(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caKey, _, err := loadOrCreateCA(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	a1, _, err := loadOrCreateAdmin(dir, ca, caKey, now.Add(-340*24*time.Hour)) // expires in 25 days
	if err != nil {
		t.Fatal(err)
	}
	a2, _, err := loadOrCreateAdmin(dir, ca, caKey, now)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a1.Raw, a2.Raw) || time.Until(a2.NotAfter) < 300*24*time.Hour {
		t.Error("an admin certificate expiring within 30 days was kept")
	}
}

func TestIdentityBrokenCAIsAnError(t *testing.T) {
	dir := t.TempDir()
	newIdentity(t, dir, 10, false, 6443)
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img")
	os.WriteFile(img, []byte("x"), 0o644)
	_, err := Prepare(Request{Dir: dir, Image: img, APIPort: 6443}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-new-identity") {
		t.Errorf("a broken ca.key: err %v, want one that names -new-identity", err)
	}
}

// kubeconfigFields reads the few fields of the kubeconfig this package writes
// (no YAML library in this module; tests/integration/test_identity.py parses it with
// PyYAML and kubectl).
func kubeconfigFields(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "- "), ": ")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

func TestIdentityKubeconfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "distros.kubesolo-like.initramfs")
	// -forward 6443:6443 -forward 16443:6443: the last forward to the guest's
	// apiserver port wins (vm's TestForwards).
	res, log := newIdentity(t, dir, 10, false, 16443)
	kc := kubeconfigFields(t, res.Kubeconfig)
	if kc["server"] != "https://127.0.0.1:16443" {
		t.Errorf("server %q, want https://127.0.0.1:16443", kc["server"])
	}
	if kc["apiVersion"] != "v1" || kc["kind"] != "Config" || kc["current-context"] != "k4s-distros.kubesolo-like.initramfs" ||
		kc["user"] != "k4s-distros.kubesolo-like.initramfs-admin" {
		t.Errorf("kubeconfig fields %v", kc)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if got, _ := base64.StdEncoding.DecodeString(kc["certificate-authority-data"]); !bytes.Equal(got, caPEM) {
		t.Error("certificate-authority-data is not ca.crt")
	}
	adminPEM, _ := os.ReadFile(filepath.Join(dir, "admin.crt"))
	if got, _ := base64.StdEncoding.DecodeString(kc["client-certificate-data"]); !bytes.Equal(got, adminPEM) {
		t.Error("client-certificate-data is not admin.crt")
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "admin.key"))
	if got, _ := base64.StdEncoding.DecodeString(kc["client-key-data"]); !bytes.Equal(got, keyPEM) {
		t.Error("client-key-data is not admin.key")
	}
	if strings.Contains(log, "warning") {
		t.Errorf("a warning with a forward to the api port:\n%s", log)
	}

	// No forward to the api port: written anyway, with a warning.
	res, log = newIdentity(t, dir, 10, false, 0)
	if kc := kubeconfigFields(t, res.Kubeconfig); kc["server"] != "https://127.0.0.1:6443" {
		t.Errorf("server %q without a forward", kc["server"])
	}
	if !strings.Contains(log, "warning: no -forward targets the guest apiserver port 6443") {
		t.Errorf("no warning without a forward:\n%s", log)
	}
}

func readArchive(t *testing.T, b []byte) []cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestIdentityArchive(t *testing.T) {
	dir := t.TempDir()
	newIdentity(t, dir, 10, false, 6443)
	arch, err := os.ReadFile(filepath.Join(dir, "identity.cpio"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	token, _ := os.ReadFile(filepath.Join(dir, contract.JoinToken))
	if !joinTokenFormat.Match(token) {
		t.Fatalf("join-token %q is not a bootstrap token", token)
	}
	type rec struct {
		name    string
		mode    uint64
		content []byte
	}
	want := []rec{
		{"etc", cpio.S_IFDIR | 0o755, nil},
		{"etc/k4s", cpio.S_IFDIR | 0o755, nil},
		{"etc/k4s/identity", cpio.S_IFDIR | 0o700, nil},
		{"etc/k4s/identity/ca.crt", cpio.S_IFREG | 0o644, caPEM},
		{"etc/k4s/identity/ca.key", cpio.S_IFREG | 0o600, keyPEM},
		{"etc/k4s/identity/join-token", cpio.S_IFREG | 0o600, token},
	}
	recs := readArchive(t, arch)
	if len(recs) != len(want) {
		var names []string
		for _, r := range recs {
			names = append(names, r.Name)
		}
		t.Fatalf("records %v, want %d", names, len(want))
	}
	for i, r := range recs {
		w := want[i]
		var content []byte
		if r.ReaderAt != nil && r.FileSize > 0 {
			content, _ = io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		}
		if r.Name != w.name || r.Mode != w.mode || !bytes.Equal(content, w.content) || r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("record %d: %s mode %o mtime %d uid %d gid %d (%d bytes), want %s mode %o (%d bytes)",
				i, r.Name, r.Mode, r.MTime, r.UID, r.GID, len(content), w.name, w.mode, len(w.content))
		}
	}
	if !bytes.Contains(arch, []byte("TRAILER!!!\x00")) || len(arch)%4 != 0 {
		t.Error("identity.cpio has no trailer or is not padded to 4 bytes")
	}
	// Reproducible: the same CA gives the same archive.
	again, err := identityArchive([]File{{"ca.crt", caPEM, 0o644}, {"ca.key", keyPEM, 0o600}, {contract.JoinToken, token, 0o600}})
	if err != nil || !bytes.Equal(again, arch) {
		t.Error("identity.cpio is not reproducible")
	}
}

func TestIdentityInitrd(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 1001, 4096} {
		dir := t.TempDir()
		newIdentity(t, dir, n, false, 6443)
		initrd, err := os.ReadFile(filepath.Join(dir, "initrd.img"))
		if err != nil {
			t.Fatal(err)
		}
		arch, _ := os.ReadFile(filepath.Join(dir, "identity.cpio"))
		padded := (n + 3) &^ 3
		if len(initrd) != padded+len(arch) {
			t.Fatalf("image of %d bytes: initrd has %d bytes, want %d + %d", n, len(initrd), padded, len(arch))
		}
		if !bytes.Equal(initrd[:n], bytes.Repeat([]byte{0xa5}, n)) {
			t.Errorf("image of %d bytes: the image is not at the start", n)
		}
		if !bytes.Equal(initrd[n:padded], make([]byte, padded-n)) {
			t.Errorf("image of %d bytes: padding is not zeros", n)
		}
		if !bytes.Equal(initrd[padded:], arch) {
			t.Errorf("image of %d bytes: identity.cpio does not follow at offset %d", n, padded)
		}
		if padded%4 != 0 || !bytes.HasPrefix(initrd[padded:], []byte("070701")) {
			t.Errorf("image of %d bytes: second archive at %d", n, padded)
		}
	}
}

// A real image (an uncompressed archive of its own) then the identity: both
// archives read back in order, as the kernel reads them.
func TestIdentityInitrdAfterArchive(t *testing.T) {
	var img bytes.Buffer
	w := cpio.Newc.Writer(&img)
	for _, r := range []cpio.Record{cpio.Directory("etc", 0o755), cpio.StaticFile("etc/motd", "hi\n", 0o644)} {
		if err := w.WriteRecord(cpio.MakeReproducible(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(t.TempDir(), "img")
	os.WriteFile(image, img.Bytes(), 0o644)
	dir := t.TempDir()
	res, err := Prepare(Request{Dir: dir, Image: image, APIPort: 6443, HostPort: 6443}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	initrd, _ := os.ReadFile(res.Initrd)
	first := readArchive(t, initrd[:img.Len()])
	second := readArchive(t, initrd[(img.Len()+3)&^3:])
	if len(first) != 2 || first[1].Name != "etc/motd" || len(second) != 6 || second[4].Name != "etc/k4s/identity/ca.key" || second[5].Name != "etc/k4s/identity/join-token" {
		t.Errorf("archives read back: %d and %d records", len(first), len(second))
	}
}

// An agent's initrd holds the server's CA certificate, join token and URL,
// never the CA key; the token is made once and reused.
func TestJoinArchive(t *testing.T) {
	server := t.TempDir()
	newIdentity(t, server, 100, false, 6443)
	token, _ := os.ReadFile(filepath.Join(server, contract.JoinToken))
	again, err := loadOrCreateJoinToken(filepath.Join(server, contract.JoinToken))
	if err != nil || !bytes.Equal(again, token) {
		t.Fatalf("join token not reused: %q, %q, %v", token, again, err)
	}
	agent := filepath.Join(t.TempDir(), "agent")
	img := filepath.Join(t.TempDir(), "image")
	os.WriteFile(img, bytes.Repeat([]byte{0xa5}, 100), 0o644)
	initrd, err := PrepareJoin(JoinRequest{Dir: agent, Cluster: server, Server: "https://192.168.76.1:6443", Image: img}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(initrd)
	recs := readArchive(t, data[100:])
	got := map[string]string{}
	for _, r := range recs {
		var content []byte
		if r.ReaderAt != nil && r.FileSize > 0 {
			content, _ = io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		}
		got[r.Name] = string(content)
	}
	caPEM, _ := os.ReadFile(filepath.Join(server, "ca.crt"))
	if got["etc/k4s/identity/ca.crt"] != string(caPEM) || got["etc/k4s/identity/join-token"] != string(token) ||
		got["etc/k4s/identity/server"] != "https://192.168.76.1:6443" {
		t.Errorf("agent identity: %v", got)
	}
	if _, ok := got["etc/k4s/identity/ca.key"]; ok {
		t.Error("the agent got the CA key")
	}
	for _, bad := range []JoinRequest{
		{Dir: agent, Cluster: server, Server: "192.168.76.1:6443", Image: img},
		{Dir: agent, Cluster: t.TempDir(), Server: "https://192.168.76.1:6443", Image: img},
	} {
		if _, err := PrepareJoin(bad, io.Discard); cli.Code(err) == "" {
			t.Errorf("prepareJoin(%+v) = %v, want a coded error", bad, err)
		}
	}
}

// -machine-config hands one Talos-style file instead of the identity files:
// the control plane's holds the CA key, a worker's only the certificate and
// the endpoint it joins.
func TestMachineConfigs(t *testing.T) {
	img := filepath.Join(t.TempDir(), "image")
	os.WriteFile(img, []byte("img!"), 0o644)
	server := t.TempDir()
	res, err := Prepare(Request{Dir: server, Image: img, APIPort: 6443, HostPort: 6443,
		Machine: MachineSettings{Type: "controlplane", Hostname: "cp-1", LAN: "eth1,192.168.76.1/24"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	files := func(initrd string) map[string]string {
		data, _ := os.ReadFile(initrd)
		out := map[string]string{}
		for _, r := range readArchive(t, data[4:]) {
			if r.ReaderAt != nil && r.FileSize > 0 {
				c, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
				out[r.Name] = string(c)
			}
		}
		return out
	}
	cp := files(res.Initrd)
	key, _ := os.ReadFile(filepath.Join(server, "ca.key"))
	mc := cp["etc/k4s/identity/machine-config.yaml"]
	if len(cp) != 1 || !strings.Contains(mc, "type: controlplane") || !strings.Contains(mc, strings.Split(strings.TrimSpace(string(key)), "\n")[1]) ||
		!strings.Contains(mc, `hostname: "cp-1"`) || !strings.Contains(mc, `lan: "eth1,192.168.76.1/24"`) {
		t.Errorf("controlplane initrd files %v:\n%s", len(cp), mc)
	}
	agent := t.TempDir()
	initrd, err := PrepareJoin(JoinRequest{Dir: agent, Cluster: server, Server: "https://192.168.76.1:6443", Image: img,
		Machine: MachineSettings{Type: "worker", Hostname: "w1"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w := files(initrd)["etc/k4s/identity/machine-config.yaml"]
	if !strings.Contains(w, "type: worker") || strings.Contains(w, "key:") || !strings.Contains(w, `endpoint: "https://192.168.76.1:6443"`) {
		t.Errorf("worker config:\n%s", w)
	}
	if _, err := PrepareJoin(JoinRequest{Dir: agent, Cluster: server, Server: "https://x:6443", Image: img,
		Machine: MachineSettings{Type: "controlplane"}}, io.Discard); cli.Code(err) != "E_USAGE" {
		t.Errorf("a joining controlplane: %v", err)
	}
	if err := (MachineSettings{Type: "router"}).Check(); cli.Code(err) != "E_USAGE" {
		t.Errorf("type router: %v", err)
	}
}
