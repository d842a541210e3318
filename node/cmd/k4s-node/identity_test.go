package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeCA(t *testing.T, dir string, isCA bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	if !isCA {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	os.WriteFile(filepath.Join(dir, "ca.crt"), certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "ca.key"), keyPEM, 0o600)
	return certPEM, keyPEM
}

// Every way the handed-over identity can be wrong names the file and what to do.
func TestIdentityProblemsNameTheFile(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
		setup            func(t *testing.T, dir string)
	}{
		{"key missing", "ca.key", "cannot be read", func(t *testing.T, dir string) {
			writeCA(t, dir, true)
			os.Remove(filepath.Join(dir, "ca.key"))
		}},
		{"cert missing", "ca.crt", "cannot be read", func(t *testing.T, dir string) {
			writeCA(t, dir, true)
			os.Remove(filepath.Join(dir, "ca.crt"))
		}},
		{"not PEM", "ca.crt", "not a PEM certificate", func(t *testing.T, dir string) {
			writeCA(t, dir, true)
			os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("garbage"), 0o644)
		}},
		{"not a CA", "ca.crt", "not a CA certificate", func(t *testing.T, dir string) { writeCA(t, dir, false) }},
		{"mismatched pair", "ca.key", "does not belong to ca.crt", func(t *testing.T, dir string) {
			other := t.TempDir()
			_, key := writeCA(t, other, true)
			writeCA(t, dir, true)
			os.WriteFile(filepath.Join(dir, "ca.key"), key, 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			_, _, err := loadIdentity(dir)
			var ie *identityError
			if !errors.As(err, &ie) {
				t.Fatalf("loadIdentity = %v, want an identityError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, filepath.Join(dir, tc.file)) || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "-new-identity") {
				t.Errorf("message %q should name %s, say %q and what to do", msg, tc.file, tc.want)
			}
		})
	}
}

func TestIdentityAbsentOrGood(t *testing.T) {
	cert, key, err := loadIdentity(t.TempDir())
	if cert != nil || key != nil || err != nil {
		t.Errorf("no identity: got %v %v %v, want nothing", cert, key, err)
	}
	dir := t.TempDir()
	writeCA(t, dir, true)
	cert, key, err = loadIdentity(dir)
	if err != nil || cert == nil || key == nil || cert.Subject.CommonName != "test-ca" {
		t.Errorf("good identity: %v %v %v", cert, key, err)
	}
}

// prefix drains a component's output even past a line longer than its buffer.
func TestPrefixDrainsLongLines(t *testing.T) {
	r, w, _ := os.Pipe()
	done := make(chan struct{})
	old := os.Stdout
	devnull, _ := os.Open(os.DevNull)
	os.Stdout = devnull
	defer func() { os.Stdout = old }()
	go func() { prefix("test", r); close(done) }()
	long := strings.Repeat("x", 3<<20) + "\nafter\n"
	if _, err := w.Write([]byte(long)); err != nil { // blocks unless drained
		t.Fatal(err)
	}
	w.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("prefix stopped draining")
	}
}
