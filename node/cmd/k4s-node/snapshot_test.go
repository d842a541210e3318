package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func sampleRecords() []kv {
	return []kv{
		{[]byte("/registry/configmaps/default/a"), []byte("k8s\x00binary\xff value")},
		{[]byte("/registry/namespaces/default"), []byte("ns")},
		{[]byte("/registry/secrets/default/s"), bytes.Repeat([]byte{7}, 100000)},
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := encodeSnapshot(&buf, snapshotMeta{Datastore: "kine", Revision: 42}, sampleRecords()); err != nil {
		t.Fatal(err)
	}
	meta, got, err := decodeSnapshot("x.snap", bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Keys != 3 || meta.Revision != 42 || meta.Datastore != "kine" {
		t.Fatalf("header %+v", meta)
	}
	for i, r := range sampleRecords() {
		if !bytes.Equal(got[i].key, r.key) || !bytes.Equal(got[i].value, r.value) {
			t.Fatalf("record %d: %q", i, got[i].key)
		}
	}
}

func TestSnapshotDamageIsNamed(t *testing.T) {
	var buf bytes.Buffer
	encodeSnapshot(&buf, snapshotMeta{Datastore: "etcd"}, sampleRecords())
	good := buf.Bytes()
	for name, data := range map[string][]byte{
		"truncated":      good[:len(good)-10],
		"a byte flipped": append(append([]byte{}, good[:len(good)-20]...), append([]byte{good[len(good)-20] ^ 1}, good[len(good)-19:]...)...),
		"not a snapshot": []byte("SQLite format 3\x00..."),
	} {
		_, _, err := decodeSnapshot("x.snap", bytes.NewReader(data))
		if err == nil || !strings.Contains(err.Error(), "x.snap") || !strings.Contains(err.Error(), "remove it") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// fakeKV is the etcd KV API over a sorted map, with etcd's paging (limit,
// More) and its "create if absent" transaction.
type fakeKV struct {
	clientv3.KV
	data   map[string]string
	leases map[string]int64
	gets   int
}

func (f *fakeKV) keys() []string {
	var ks []string
	for k := range f.data {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (f *fakeKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	f.gets++
	op := clientv3.OpGet(key, opts...)
	resp := &clientv3.GetResponse{Header: &etcdserverpb.ResponseHeader{Revision: 99}}
	for _, k := range f.keys() {
		if k < key || k >= string(op.RangeBytes()) {
			continue
		}
		if op.IsCountOnly() {
			resp.Count++
			continue
		}
		if op.Limit() > 0 && int64(len(resp.Kvs)) == op.Limit() {
			resp.More = true
			break
		}
		resp.Kvs = append(resp.Kvs, &mvccpb.KeyValue{Key: []byte(k), Value: []byte(f.data[k]), Lease: f.leases[k]})
	}
	return resp, nil
}

func (f *fakeKV) Txn(ctx context.Context) clientv3.Txn { return &fakeTxn{kv: f} }

type fakeTxn struct {
	clientv3.Txn
	kv   *fakeKV
	cmps []clientv3.Cmp
	ops  []clientv3.Op
}

func (t *fakeTxn) If(c ...clientv3.Cmp) clientv3.Txn  { t.cmps = c; return t }
func (t *fakeTxn) Then(o ...clientv3.Op) clientv3.Txn { t.ops = o; return t }
func (t *fakeTxn) Commit() (*clientv3.TxnResponse, error) {
	if len(t.cmps) != 1 || len(t.ops) != 1 || !t.ops[0].IsPut() {
		return nil, fmt.Errorf("not a create transaction")
	}
	k := string(t.ops[0].KeyBytes())
	if _, ok := t.kv.data[k]; ok {
		return &clientv3.TxnResponse{}, nil
	}
	t.kv.data[k] = string(t.ops[0].ValueBytes())
	return &clientv3.TxnResponse{Succeeded: true}, nil
}

func TestDumpPagesAtOneRevisionWithoutLeasedKeys(t *testing.T) {
	f := &fakeKV{data: map[string]string{"compact_rev_key": "x", "/registry/events/default/e": "ev"}, leases: map[string]int64{"/registry/events/default/e": 7}}
	for i := 0; i < 1234; i++ {
		f.data[fmt.Sprintf("/registry/configmaps/default/c%04d", i)] = fmt.Sprint(i)
	}
	rev, records, err := dumpDatastore(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if rev != 99 || len(records) != 1234 || f.gets != 3 {
		t.Fatalf("revision %d, %d records in %d pages; want 99, 1234 (no event, no kine key) in 3", rev, len(records), f.gets)
	}
}

func TestLoadIntoEmptyDatastoreOnlyNamespacesLast(t *testing.T) {
	f := &fakeKV{data: map[string]string{}}
	n, err := loadSnapshot(context.Background(), f, sampleRecords())
	if err != nil || n != 3 || f.data["/registry/namespaces/default"] != "ns" {
		t.Fatalf("loaded %d: %v", n, err)
	}
	// A datastore with namespaces is not overwritten.
	if _, err := loadSnapshot(context.Background(), f, sampleRecords()); err != errDatastoreNotEmpty {
		t.Fatalf("second load: %v", err)
	}
	// Interrupted before the namespaces: loaded again, the rest completed.
	g := &fakeKV{data: map[string]string{"/registry/configmaps/default/a": "older"}}
	if n, err := loadSnapshot(context.Background(), g, sampleRecords()); err != nil || n != 3 || g.data["/registry/configmaps/default/a"] != "older" || len(g.data) != 3 {
		t.Fatalf("resumed load: %d %v %v", n, err, g.data)
	}
}

// The endpoint accepts the cluster CA's system:masters certificates only.
func TestSnapshotEndpointAuthorizesMastersOfTheClusterCAOnly(t *testing.T) {
	p, err := ensurePKI(t.TempDir(), "n1", []net.IP{net.ParseIP("127.0.0.1")}, testCertLifetime)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ensurePKI(t.TempDir(), "n2", []net.IP{net.ParseIP("127.0.0.1")}, testCertLifetime)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := snapshotTLS(p)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mastersOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("snap")) }))}
	go srv.Serve(tls.NewListener(ln, cfg))
	defer srv.Close()
	get := func(certDir *pki, name string) (int, error) {
		pool, _ := caPool(p.path("ca.crt"))
		tc := &tls.Config{RootCAs: pool}
		if name != "" {
			c, err := tls.LoadX509KeyPair(certDir.path(name+".crt"), certDir.path(name+".key"))
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := client.Get("https://" + ln.Addr().String() + "/snapshot")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(p, "admin"); code != 200 {
		t.Fatalf("admin: %d %v", code, err)
	}
	if code, err := get(p, "kubelet"); code != 403 {
		t.Fatalf("the node's kubelet (system:nodes): %d %v; want 403", code, err)
	}
	if code, err := get(other, "admin"); err == nil {
		t.Fatalf("another CA's admin: HTTP %d; want a refused handshake", code)
	}
	if code, err := get(p, ""); err == nil {
		t.Fatalf("no client certificate: HTTP %d; want a refused handshake", code)
	}
}
