package main

import (
	"crypto/tls"
	"fmt"
	"log"
	"os"
	"sync"
	"time"
)

// Certificate renewal without a reboot. The server's k4s-node reissues every
// leaf certificate of its PKI (pki.go: the apiserver's serving certificate, its
// kubelet, etcd and front-proxy client certificates, the components' client
// certificates in their kubeconfigs, the kubelet's client and serving
// certificates, etcd's) at ~2/3 of their lifetime (-cert-lifetime), with new
// keys, over the same files. No component is restarted, because every one
// reads those files again by itself (checked in Kubernetes v1.37.2, etcd 3.7):
//
//   - kube-apiserver: --tls-cert-file and --proxy-client-cert-file are
//     dynamic certificate files (fsnotify and a 1-minute resync);
//     --kubelet-client-certificate goes through client-go's transport with
//     ReloadTLSFiles; --etcd-certfile is read at each TLS handshake by etcd's
//     client (transport.TLSInfo.ClientConfig's GetClientCertificate);
//   - kube-controller-manager, kube-scheduler, kube-proxy, the kubelet (its
//     --kubeconfig without rotateCertificates), CoreDNS, flanneld and
//     kube-router: client-go reloads a kubeconfig's client-certificate files
//     (transport.loadTLSFiles sets ReloadTLSFiles) every 5 minutes
//     (transport.CertCallbackRefreshDuration) and closes its connections when
//     the certificate changed, so the next handshake presents the new one;
//   - the kubelet's serving certificate (tlsCertFile): reloaded by the
//     kubelet (feature ReloadKubeletServerCertificateFile, beta and on since
//     1.31);
//   - etcd's serving certificate: read at each TLS handshake.
//
// So renewal must happen at least reloadWindow before the old certificates
// expire: with the default lifetime (1 year) that is ~4 months before, with a
// 10-minute lifetime (tests) 6 minutes before (at 4 minutes of age).
//
// k4s-node's own API client reads its certificate at each TLS handshake
// (clientCert) and drops its idle connections after a renewal.
//
// An agent's kubelet renews its own client and serving certificates
// (rotateCertificates, serverTLSBootstrap) through CSRs that
// kube-controller-manager signs for --cluster-signing-duration, which the
// server sets to -cert-lifetime; k4s-node on the agent reads the renewed
// client certificate the same way.

const (
	// certBackdate: leaves are valid from this long before they are issued,
	// so that a clock a little behind still accepts them.
	certBackdate = time.Hour
	// reloadWindow: how long the components may take to read renewed files
	// (client-go: 5 minutes), plus a minute of margin.
	reloadWindow = 6 * time.Minute
	// minCertLifetime: shorter lifetimes leave no time between renewals.
	minCertLifetime = 10 * time.Minute
	// renewCheck: how often the renewal loop looks at the clock (wall clock:
	// a clock step by NTP is seen within this).
	renewCheck = 30 * time.Second
)

// checkCertLifetime refuses a -cert-lifetime too short to renew in time.
func checkCertLifetime(d time.Duration) error {
	if d < minCertLifetime {
		return fmt.Errorf("-cert-lifetime (kernel flag k4s.cert-lifetime=) is %s: it must be at least %s, "+
			"since components take up to %s to read renewed certificates; set e.g. k4s.cert-lifetime=8760h (1 year, the default) or 10m",
			d, minCertLifetime, reloadWindow)
	}
	return nil
}

// renewAt is when leaves issued at `issued` and valid until notAfter are
// renewed: at 2/3 of their lifetime, and no later than reloadWindow before
// they expire.
func renewAt(issued, notAfter time.Time) time.Time {
	t := issued.Add(notAfter.Sub(issued) * 2 / 3)
	if latest := notAfter.Add(-reloadWindow); t.After(latest) {
		t = latest
	}
	return t
}

// renewalDue tells whether the leaves must be reissued at now: renewal time
// has come, or the clock was set back before they were valid (a clock
// corrected after they were issued).
func (p *pki) renewalDue(now time.Time) bool {
	now = now.Round(0)
	return !now.Before(renewAt(p.issued, p.leafExpires)) || now.Before(p.issued.Add(-certBackdate))
}

// renewCertificates reissues the server's leaf certificates whenever they
// are due, for as long as the node runs.
func (n *node) renewCertificates() {
	p := n.pki
	log.Printf("certificates: leaves valid until %s; renewal at %s (-cert-lifetime %s)",
		p.leafExpires.UTC().Format(time.RFC3339), renewAt(p.issued, p.leafExpires).UTC().Format(time.RFC3339), p.lifetime)
	for {
		time.Sleep(renewCheck)
		if !p.renewalDue(time.Now()) {
			continue
		}
		old := p.leafExpires
		if err := p.issueLeaves(time.Now()); err != nil {
			log.Printf("ERROR: renewing certificates (they expire at %s): %v; retrying in %s",
				old.UTC().Format(time.RFC3339), err, renewCheck)
			continue
		}
		n.dropIdleConnections()
		log.Printf("certificates renewed: %d leaves valid until %s (were until %s); next renewal at %s; "+
			"components read them again by themselves within %s",
			len(leafCerts(p.nodeName)), p.leafExpires.UTC().Format(time.RFC3339), old.UTC().Format(time.RFC3339),
			renewAt(p.issued, p.leafExpires).UTC().Format(time.RFC3339), reloadWindow-time.Minute)
	}
}

// watchClientCert drops k4s-node's idle API connections when its client
// certificate file changes (an agent's kubelet renews it), so that the next
// request shakes hands with the new one.
func (n *node) watchClientCert(path string) {
	var last time.Time
	for {
		if fi, err := os.Stat(path); err == nil {
			if !last.IsZero() && !fi.ModTime().Equal(last) {
				n.dropIdleConnections()
				log.Printf("the node's client certificate was renewed (%s)", path)
			}
			last = fi.ModTime()
		}
		time.Sleep(renewCheck)
	}
}

func (n *node) dropIdleConnections() {
	if c, err := n.apiClient(); err == nil {
		c.CloseIdleConnections()
	}
}

// clientCert is a TLS client certificate read from files at each handshake
// (and kept while the files are unchanged), so renewals need no restart.
type clientCert struct {
	certFile, keyFile string

	mu      sync.Mutex
	modTime time.Time
	cert    *tls.Certificate
}

func (c *clientCert) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fi, err := os.Stat(c.certFile)
	if err != nil {
		return nil, err
	}
	if c.cert != nil && fi.ModTime().Equal(c.modTime) {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil { // a renewal between the key and the certificate: the old pair still holds
			return c.cert, nil
		}
		return nil, err
	}
	c.cert, c.modTime = &cert, fi.ModTime()
	return c.cert, nil
}
