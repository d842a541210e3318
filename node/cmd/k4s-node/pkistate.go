package main

// What of the PKI is kept from one boot to the next when the state directory
// is on a data disk (disk.go): a CA the node made itself, the service-account
// signing key (else every service-account token in the cluster stops
// verifying at a reboot) and the front-proxy CA. Leaf certificates are signed
// again at every boot, by the same CAs. Diskless, the directory is empty at
// every boot and all of them are made anew, as before.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// readPEM is the DER of the first PEM block of a file, or nil if there is no file.
func readPEM(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: not PEM; delete it to have the node make a new one", path)
	}
	return b.Bytes, nil
}

// parseKey reads an ECDSA private key in SEC 1 or PKCS #8 form.
func parseKey(path string, der []byte) (*ecdsa.PrivateKey, error) {
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if ec, ok := k.(*ecdsa.PrivateKey); err == nil && ok {
		return ec, nil
	}
	return nil, fmt.Errorf("%s: not an ECDSA private key; delete it to have the node make a new one", path)
}

// loadOrNewKey is the ECDSA key in path (from an earlier boot) and its SEC 1
// DER, or a new one (which the caller writes there).
func loadOrNewKey(path string) (*ecdsa.PrivateKey, []byte, error) {
	der, err := readPEM(path)
	if err != nil {
		return nil, nil, err
	}
	if der == nil {
		return newKey()
	}
	k, err := parseKey(path, der)
	if err != nil {
		return nil, nil, err
	}
	sec1, err := x509.MarshalECPrivateKey(k)
	return k, sec1, err
}

// loadCA is a CA certificate and its key from an earlier boot, or nil, nil
// when either file is missing (the caller makes a new CA). A certificate that
// is not its key's, or expires within a day, is an error that says what to do.
func loadCA(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certDER, err := readPEM(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := readPEM(keyPath)
	if err != nil || certDER == nil || keyDER == nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w; delete it and %s to have the node make a new CA", certPath, err, keyPath)
	}
	key, err := parseKey(keyPath, keyDER)
	if err != nil {
		return nil, nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s is not the certificate of %s; delete both to have the node make a new CA", certPath, keyPath)
	}
	if time.Now().Add(24 * time.Hour).After(cert.NotAfter) {
		return nil, nil, fmt.Errorf("%s expires at %s: hand the node a new cluster identity, or delete it and %s "+
			"(every credential signed by it stops working)", certPath, cert.NotAfter, keyPath)
	}
	return cert, key, nil
}

// frontProxyCA is the front-proxy CA (as kubeadm makes one: it signs the
// apiserver's client certificate for aggregated APIs, and components read it
// from the extension-apiserver-authentication ConfigMap), kept from an
// earlier boot or made on the node, and written to dir.
func frontProxyCA(p *pki, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := p.path("front-proxy-ca.crt"), p.path("front-proxy-ca.key")
	if cert, key, err := loadCA(certPath, keyPath); err != nil || cert != nil {
		return cert, key, err
	}
	key, der, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "k4s-front-proxy-ca"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, nil, err
	}
	if err := writePEM(keyPath, "EC PRIVATE KEY", der, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", certDER, 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}
