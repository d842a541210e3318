package main

// Datastore snapshots, taken from the host (as `k3s etcd-snapshot save` or
// `talosctl etcd snapshot`), restored at boot (restore.go).
//
// A snapshot is the cluster's objects: every key under /registry/ that
// kube-apiserver stored in the datastore, read at one revision through the etcd
// API that both kine and etcd serve (so one format for both datastores and no
// SQLite or bbolt code in k4s-node), without leased keys (Events, which expire).
// The file:
//
//	k4s-datastore-snapshot/1\n
//	{"datastore":"kine","revision":1234,"keys":567,"sha256":"<hex of the body>","created":"<RFC3339>"}\n
//	body: gzip of, per key, uvarint(len(key)) key uvarint(len(value)) value
//
// The node serves it on its primary address (the one `pants run` forwards to),
// port -snapshot-port (6444), over TLS with the apiserver's certificate, to
// clients whose certificate the cluster CA signed for group system:masters (the
// admin kubeconfig's), and to nobody else:
//
//	D=.k4s/clusters/distros.k3s-like.initramfs
//	curl -fsS --cacert $D/ca.crt --cert $D/admin.crt --key $D/admin.key https://127.0.0.1:6444/snapshot -o k3s.snap
//
// or `./pants run distros/k3s-like:initramfs -- -snapshot k3s.snap` (k4stool).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const (
	snapshotMagic  = "k4s-datastore-snapshot/1\n"
	registryPrefix = "/registry/"
	snapshotPage   = 500
	// snapshotMaxBody bounds what a snapshot may unpack to (the datastore's quota).
	snapshotMaxBody = 256 << 20
)

// snapshotPort is -snapshot-port.
var snapshotPort int

// snapshotMeta is a snapshot's header line.
type snapshotMeta struct {
	Datastore string `json:"datastore"`
	Revision  int64  `json:"revision"`
	Keys      int    `json:"keys"`
	SHA256    string `json:"sha256"`
	Created   string `json:"created"`
}

type kv struct{ key, value []byte }

// encodeSnapshot writes the records as a snapshot file.
func encodeSnapshot(w io.Writer, meta snapshotMeta, records []kv) error {
	var body bytes.Buffer
	gz := gzip.NewWriter(&body)
	var n [binary.MaxVarintLen64]byte
	for _, r := range records {
		for _, b := range [][]byte{r.key, r.value} {
			gz.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
			gz.Write(b)
		}
	}
	if err := gz.Close(); err != nil {
		return err
	}
	sum := sha256.Sum256(body.Bytes())
	meta.Keys, meta.SHA256 = len(records), hex.EncodeToString(sum[:])
	header, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(snapshotMagic)
	bw.Write(header)
	bw.WriteByte('\n')
	bw.Write(body.Bytes())
	return bw.Flush()
}

// snapshotError is a snapshot file that cannot be restored, with what to do.
type snapshotError struct{ path, problem string }

func (e *snapshotError) Error() string {
	return fmt.Sprintf("datastore snapshot %s: %s. Hand the node a snapshot taken from a k4s node "+
		"(`curl ... https://<node>:6444/snapshot -o FILE` or `pants run <target> -- -snapshot FILE`), "+
		"or remove it to boot an empty cluster", e.path, e.problem)
}

// decodeSnapshot reads and checks a snapshot file: its magic, the body's
// checksum and the number of keys.
func decodeSnapshot(path string, r io.Reader) (snapshotMeta, []kv, error) {
	var meta snapshotMeta
	br := bufio.NewReader(r)
	magic, err := br.ReadString('\n')
	if err != nil || magic != snapshotMagic {
		return meta, nil, &snapshotError{path, fmt.Sprintf("does not start with %q (not a k4s snapshot, or another version)", snapshotMagic[:len(snapshotMagic)-1])}
	}
	header, err := br.ReadBytes('\n')
	if err != nil {
		return meta, nil, &snapshotError{path, "ends inside its header"}
	}
	if err := json.Unmarshal(header, &meta); err != nil {
		return meta, nil, &snapshotError{path, "header: " + err.Error()}
	}
	body, err := io.ReadAll(io.LimitReader(br, snapshotMaxBody+1))
	if err != nil {
		return meta, nil, &snapshotError{path, err.Error()}
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != meta.SHA256 {
		return meta, nil, &snapshotError{path, fmt.Sprintf("body's sha256 %x is not the header's %s (truncated or damaged)", sum, meta.SHA256)}
	}
	gz, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return meta, nil, &snapshotError{path, "body: " + err.Error()}
	}
	plain := bufio.NewReader(io.LimitReader(gz, snapshotMaxBody))
	var records []kv
	field := func() ([]byte, error) {
		n, err := binary.ReadUvarint(plain)
		if err != nil {
			return nil, err
		}
		if n > snapshotMaxBody {
			return nil, fmt.Errorf("a record of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(plain, b)
		return b, err
	}
	for {
		key, err := field()
		if errors.Is(err, io.EOF) {
			break
		}
		var value []byte
		if err == nil {
			value, err = field()
		}
		if err != nil {
			return meta, nil, &snapshotError{path, fmt.Sprintf("record %d: %v", len(records)+1, err)}
		}
		records = append(records, kv{key, value})
	}
	if len(records) != meta.Keys {
		return meta, nil, &snapshotError{path, fmt.Sprintf("holds %d keys, its header says %d", len(records), meta.Keys)}
	}
	return meta, records, nil
}

// datastoreClient is an etcd API client of the node's datastore: kine's unix
// socket, or etcd with the apiserver's client certificate.
func (n *node) datastoreClient() (*clientv3.Client, string, error) {
	if n.runs("etcd") {
		cert, err := tls.LoadX509KeyPair(n.pki.path("apiserver-etcd-client.crt"), n.pki.path("apiserver-etcd-client.key"))
		if err != nil {
			return nil, "", err
		}
		pool, err := caPool(n.pki.path("ca.crt"))
		if err != nil {
			return nil, "", err
		}
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + etcdClientAddr}, DialTimeout: 10 * time.Second,
			TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}, Logger: zap.NewNop()})
		return c, "etcd", err
	}
	if n.runs("kine") {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{"unix://" + kineSocket(n)}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
		return c, "kine", err
	}
	return nil, "", errors.New("this node runs no datastore (kine or etcd)")
}

// dumpDatastore reads every key under /registry/ at one revision, a page at a
// time, without leased keys.
func dumpDatastore(ctx context.Context, c clientv3.KV) (int64, []kv, error) {
	var records []kv
	var rev int64
	key, end := registryPrefix, clientv3.GetPrefixRangeEnd(registryPrefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(snapshotPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := c.Get(ctx, key, opts...)
		if err != nil {
			return 0, nil, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, x := range resp.Kvs {
			if x.Lease == 0 {
				records = append(records, kv{x.Key, x.Value})
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, records, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// mastersOnly answers 403 unless the client's verified certificate is in group
// system:masters (TLS has already checked that the cluster CA signed it).
func mastersOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || !slices.Contains(r.TLS.VerifiedChains[0][0].Subject.Organization, "system:masters") {
			http.Error(w, "forbidden: a client certificate of the cluster CA in group system:masters (the admin kubeconfig's) is required", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// snapshotHandler serves GET /snapshot.
func (n *node) snapshotHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/snapshot", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		who := r.TLS.VerifiedChains[0][0].Subject.CommonName
		start := time.Now()
		c, kind, err := n.datastoreClient()
		if err != nil {
			http.Error(w, "datastore: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		rev, records, err := dumpDatastore(ctx, c)
		if err != nil {
			http.Error(w, "datastore: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		var buf bytes.Buffer
		meta := snapshotMeta{Datastore: kind, Revision: rev, Created: time.Now().UTC().Format(time.RFC3339)}
		if err := encodeSnapshot(&buf, meta, records); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
		log.Printf("datastore snapshot for %q from %s: %d keys at revision %d, %d bytes, in %s",
			who, r.RemoteAddr, len(records), rev, buf.Len(), time.Since(start).Round(time.Millisecond))
	})
	return mastersOnly(mux)
}

// serveSnapshots listens on the node's primary address (not the pod network's
// or the LAN's, unless that is the only one) for snapshot requests.
func (n *node) serveSnapshots(port int) {
	if port == 0 || n.agent() {
		return
	}
	cfg, err := snapshotTLS(n.pki)
	if err != nil {
		log.Printf("snapshots: %v; not served", err)
		return
	}
	addr := net.JoinHostPort(nodeIP(nil).String(), strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Printf("snapshots: %v; not served", err)
		return
	}
	log.Printf("datastore snapshots: https://%s/snapshot (client certificates of the cluster CA, group system:masters)", addr)
	srv := &http.Server{Handler: n.snapshotHandler(), TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second}
	go func() { log.Printf("snapshots: %v", srv.Serve(tls.NewListener(ln, cfg))) }()
}

// snapshotTLS is the endpoint's TLS: the apiserver's certificate, and client
// certificates of the cluster CA only.
func snapshotTLS(p *pki) (*tls.Config, error) {
	pool, err := caPool(p.path("ca.crt"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  pool,
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			// Read at each handshake: the apiserver's certificate may be renewed.
			c, err := tls.LoadX509KeyPair(p.path("apiserver.crt"), p.path("apiserver.key"))
			return &c, err
		},
	}, nil
}

func caPool(path string) (*x509.CertPool, error) {
	ca, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}
