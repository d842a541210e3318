package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
)

// identityDir (contract_gen.go, generated from k4stool's identity contract)
// holds the cluster identity handed to the node at boot: the cluster CA's
// certificate and key (ca.crt, ca.key). `pants run` of an initramfs with
// `cluster_identity=True` appends a second cpio with them to the image (the
// image itself stays generic, cacheable and key-free); a real device gets them
// the same way from its provisioning (see docs/cluster-identity.md), as a Talos
// control-plane node gets the CA in its machine config.

// identityError is a problem with the handed-over identity: which file, what
// is wrong, and what to do. The node does not start Kubernetes with it.
type identityError struct{ file, problem string }

func (e *identityError) Error() string {
	return fmt.Sprintf("cluster identity: %s: %s. Hand the node a matching ca.crt and ca.key in %s "+
		"(with `pants run`: delete the target's .k4s/clusters/<target> directory, or run it with "+
		"`-- -new-identity`, to make a new one)", e.file, e.problem, identityDir)
}

// loadIdentity reads the CA from dir. It returns (nil, nil) when dir holds
// neither file: the node then makes a CA of its own, which nobody outside
// the node can use.
func loadIdentity(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, nil
	case certErr != nil:
		return nil, nil, &identityError{certPath, fmt.Sprintf("cannot be read (%v) while ca.key is there", certErr)}
	case keyErr != nil:
		return nil, nil, &identityError{keyPath, fmt.Sprintf("cannot be read (%v) while ca.crt is there", keyErr)}
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, &identityError{certPath, "is not a PEM certificate"}
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, &identityError{certPath, err.Error()}
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, &identityError{certPath, "is not a CA certificate (IsCA, KeyUsage CertSign)"}
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, &identityError{keyPath, "is not a PEM private key"}
	}
	var key any
	if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
				return nil, nil, &identityError{keyPath, "is not an EC, PKCS#8 or PKCS#1 private key"}
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, &identityError{keyPath, "is not a signing key"}
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := signer.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, &identityError{keyPath, "does not belong to ca.crt (a mismatched pair)"}
	}
	log.Printf("cluster identity: CA %q from %s", cert.Subject.CommonName, dir)
	return cert, signer, nil
}
