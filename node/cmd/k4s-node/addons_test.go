package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// At a boot over a data disk the add-ons exist already: those that follow from
// the image or the node are replaced (PUT), the others kept, the missing created.
func TestApplyAddonsReplacesWhatFollowsFromTheImage(t *testing.T) {
	dir := t.TempDir()
	p, err := ensurePKI(dir, "n", []net.IP{net.ParseIP("127.0.0.1")}, testCertLifetime)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var puts, posts []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case "GET": // every add-on exists (a boot over a data disk), but one
			if strings.HasSuffix(r.URL.Path, "/kube-dns-k4s") {
				w.WriteHeader(http.StatusNotFound)
			} else {
				w.WriteHeader(http.StatusOK)
			}
		case "POST":
			posts = append(posts, r.URL.Path)
			w.WriteHeader(http.StatusCreated)
		case "PUT":
			puts = append(puts, r.URL.Path)
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
		w.Write([]byte("{}"))
	}))
	cert, err := tls.LoadX509KeyPair(p.path("apiserver.crt"), p.path("apiserver.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(p.path("ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	apiPort, _ := strconv.Atoi(port)
	n := &node{name: "n", ip: net.ParseIP("10.0.2.15"), data: dir, pki: p, apiPort: apiPort,
		components: []string{"kine", "kube-apiserver", "flanneld", "coredns"}}
	if err := n.applyAddons(); err != nil {
		t.Fatal(err)
	}
	// Only the missing one is created: a POST of an existing Service would fail (422).
	if len(posts) != 1 || posts[0] != "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices" {
		t.Errorf("POSTs %v, want only the missing EndpointSlice", posts)
	}
	want := map[string]bool{
		"/apis/rbac.authorization.k8s.io/v1/clusterroles/" + flannelUser:        false,
		"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/" + corednsUser: false,
	}
	for _, path := range puts {
		if path == "/api/v1/namespaces/kube-system/services/kube-dns" {
			t.Errorf("the kube-dns Service was replaced (its cluster IP is allocated: keep it)")
		}
		if _, ok := want[path]; ok {
			want[path] = true
		}
	}
	for path, seen := range want {
		if !seen {
			t.Errorf("not replaced: %s (PUTs: %v)", path, puts)
		}
	}
}
