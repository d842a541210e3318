//go:build !k4s_download

package gocache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	gstatus "google.golang.org/grpc/status"
)

// fakeREAPI is an in-memory ActionCache + CAS + ByteStream, with call counts.
type fakeREAPI struct {
	repb.UnimplementedActionCacheServer
	repb.UnimplementedContentAddressableStorageServer
	mu    sync.Mutex
	ac    map[string]*repb.ActionResult
	cas   map[string][]byte
	calls map[string]int
}

func (f *fakeREAPI) count(name string) {
	f.mu.Lock()
	f.calls[name]++
	f.mu.Unlock()
}

func (f *fakeREAPI) GetActionResult(_ context.Context, r *repb.GetActionResultRequest) (*repb.ActionResult, error) {
	f.count("GetActionResult")
	f.mu.Lock()
	defer f.mu.Unlock()
	if res, ok := f.ac[r.GetInstanceName()+"/"+r.GetActionDigest().GetHash()]; ok {
		return res, nil
	}
	return nil, gstatus.Error(codes.NotFound, "no such action")
}

func (f *fakeREAPI) UpdateActionResult(_ context.Context, r *repb.UpdateActionResultRequest) (*repb.ActionResult, error) {
	f.count("UpdateActionResult")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ac[r.GetInstanceName()+"/"+r.GetActionDigest().GetHash()] = r.GetActionResult()
	return r.GetActionResult(), nil
}

func (f *fakeREAPI) FindMissingBlobs(_ context.Context, r *repb.FindMissingBlobsRequest) (*repb.FindMissingBlobsResponse, error) {
	f.count("FindMissingBlobs")
	f.mu.Lock()
	defer f.mu.Unlock()
	var missing []*repb.Digest
	for _, d := range r.GetBlobDigests() {
		if _, ok := f.cas[d.GetHash()]; !ok {
			missing = append(missing, d)
		}
	}
	return &repb.FindMissingBlobsResponse{MissingBlobDigests: missing}, nil
}

func (f *fakeREAPI) BatchUpdateBlobs(_ context.Context, r *repb.BatchUpdateBlobsRequest) (*repb.BatchUpdateBlobsResponse, error) {
	f.count("BatchUpdateBlobs")
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &repb.BatchUpdateBlobsResponse{}
	for _, q := range r.GetRequests() {
		f.cas[q.GetDigest().GetHash()] = q.GetData()
		resp.Responses = append(resp.Responses, &repb.BatchUpdateBlobsResponse_Response{Digest: q.GetDigest(), Status: &status.Status{}})
	}
	return resp, nil
}

func (f *fakeREAPI) BatchReadBlobs(_ context.Context, r *repb.BatchReadBlobsRequest) (*repb.BatchReadBlobsResponse, error) {
	f.count("BatchReadBlobs")
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &repb.BatchReadBlobsResponse{}
	for _, d := range r.GetDigests() {
		data, ok := f.cas[d.GetHash()]
		st := &status.Status{}
		if !ok {
			st.Code = int32(codes.NotFound)
		}
		resp.Responses = append(resp.Responses, &repb.BatchReadBlobsResponse_Response{Digest: d, Data: data, Status: st})
	}
	return resp, nil
}

// The ByteStream service, registered by hand (as the client speaks it).
func (f *fakeREAPI) bsRead(_ any, s grpc.ServerStream) error {
	f.count("Read")
	var req bsReadRequest
	if err := s.RecvMsg(&req); err != nil {
		return err
	}
	parts := strings.Split(req.ResourceName, "/")
	hash := parts[len(parts)-2]
	f.mu.Lock()
	data, ok := f.cas[hash]
	f.mu.Unlock()
	if !ok {
		return gstatus.Error(codes.NotFound, "no blob")
	}
	for off := 0; off < len(data); off += 100000 { // several messages
		if err := s.SendMsg(&bsReadResponse{Data: data[off:min(off+100000, len(data))]}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeREAPI) bsWrite(_ any, s grpc.ServerStream) error {
	f.count("Write")
	var name string
	var data []byte
	for {
		var req bsWriteRequest
		if err := s.RecvMsg(&req); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if req.ResourceName != "" {
			name = req.ResourceName
		}
		if req.WriteOffset != int64(len(data)) {
			return gstatus.Error(codes.InvalidArgument, "bad offset")
		}
		data = append(data, req.Data...)
	}
	parts := strings.Split(name, "/")
	if !strings.HasPrefix(strings.TrimPrefix(name, "inst/"), "uploads/") || parts[len(parts)-1] != fmt.Sprint(len(data)) {
		return gstatus.Errorf(codes.InvalidArgument, "bad resource name %q", name)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != parts[len(parts)-2] {
		return gstatus.Error(codes.InvalidArgument, "digest mismatch")
	}
	f.mu.Lock()
	f.cas[parts[len(parts)-2]] = data
	f.mu.Unlock()
	return s.SendMsg(&bsWriteResponse{CommittedSize: int64(len(data))})
}

func startFakeREAPI(t *testing.T) (*fakeREAPI, string) {
	t.Helper()
	f := &fakeREAPI{ac: map[string]*repb.ActionResult{}, cas: map[string][]byte{}, calls: map[string]int{}}
	srv := grpc.NewServer(grpc.ForceServerCodec(reapiCodec{}), grpc.MaxRecvMsgSize(64<<20))
	repb.RegisterActionCacheServer(srv, f)
	repb.RegisterContentAddressableStorageServer(srv, f)
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "google.bytestream.ByteStream",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "Read", Handler: f.bsRead, ServerStreams: true},
			{StreamName: "Write", Handler: f.bsWrite, ClientStreams: true},
		},
	}, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f, "grpc://" + lis.Addr().String()
}

// progClient speaks the go command's side of the protocol to a goCache.
type progClient struct {
	t    *testing.T
	in   *io.PipeWriter
	dec  *json.Decoder
	done chan error
	next int64
}

func startProg(t *testing.T, c *goCache) *progClient {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &progClient{t: t, in: inW, dec: json.NewDecoder(bufio.NewReader(outR)), done: make(chan error, 1)}
	go func() { p.done <- c.serve(inR, outW); outW.Close() }()
	var caps gcResponse
	if err := p.dec.Decode(&caps); err != nil || caps.ID != 0 || strings.Join(caps.KnownCommands, ",") != "get,put,close" {
		t.Fatalf("capabilities: %+v %v", caps, err)
	}
	return p
}

func (p *progClient) roundTrip(req map[string]any, body []byte) gcResponse {
	p.t.Helper()
	p.next++
	req["ID"] = p.next
	line, _ := json.Marshal(req)
	msg := append(line, '\n')
	if len(body) > 0 {
		b, _ := json.Marshal(body) // a base64 JSON string, as the go command writes it
		msg = append(append(msg, b...), '\n')
	}
	if _, err := p.in.Write(msg); err != nil {
		p.t.Fatal(err)
	}
	var res gcResponse
	if err := p.dec.Decode(&res); err != nil {
		p.t.Fatal(err)
	}
	if res.ID != p.next {
		p.t.Fatalf("response ID %d, want %d", res.ID, p.next)
	}
	return res
}

func (p *progClient) put(action, body []byte) gcResponse {
	out := sha256.Sum256(body)
	return p.roundTrip(map[string]any{"Command": "put", "ActionID": action, "OutputID": out[:], "BodySize": len(body)}, body)
}

func (p *progClient) get(action []byte) gcResponse {
	return p.roundTrip(map[string]any{"Command": "get", "ActionID": action}, nil)
}

func (p *progClient) close() {
	p.roundTrip(map[string]any{"Command": "close"}, nil)
	p.in.Close()
	if err := <-p.done; err != nil {
		p.t.Fatal(err)
	}
}

func newTestCache(t *testing.T, dir, remote string) *goCache {
	d, err := newDiskCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &goCache{disk: d, started: time.Now(), statsLog: filepath.Join(dir, "k4s-gocache.log")}
	if remote != "" {
		if c.remote, err = newRemoteCache(remote, "inst"); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func actionID(s string) []byte { a := sha256.Sum256([]byte(s)); return a[:] }

func readStats(t *testing.T, dir string) []gocacheStats {
	data, err := os.ReadFile(filepath.Join(dir, "k4s-gocache.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []gocacheStats
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var s gocacheStats
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// Machine A puts (a small output in a batch, a large one over ByteStream, an
// empty one); machine B, with an empty local dir, gets them from the remote,
// byte for byte, then from its own disk.
func TestGocacheSharesThroughREAPI(t *testing.T) {
	fake, addr := startFakeREAPI(t)
	small := []byte("small package export data")
	large := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+7) // > gcBatchMax: ByteStream
	outputs := map[string][]byte{"small": small, "large": large, "empty": {}}

	dirA := t.TempDir()
	a := startProg(t, newTestCache(t, dirA, addr))
	for name, body := range outputs {
		if r := a.get(actionID(name)); !r.Miss {
			t.Fatalf("get %s on an empty cache: %+v", name, r)
		}
		r := a.put(actionID(name), body)
		if got, err := os.ReadFile(r.DiskPath); r.Err != "" || err != nil || !bytes.Equal(got, body) {
			t.Fatalf("put %s: %+v %v", name, r, err)
		}
	}
	a.close()
	if s := readStats(t, dirA)[0]; s.Misses != 3 || s.Puts != 3 || s.Uploaded != 3 || s.BytesUp != int64(len(small)+len(large)) {
		t.Fatalf("machine A stats: %+v", s)
	}
	if fake.calls["Write"] != 1 || fake.calls["UpdateActionResult"] != 3 {
		t.Fatalf("server calls: %v", fake.calls)
	}
	// The AC entry: one output file "o", the OutputID as the CAS digest.
	out := sha256.Sum256(small)
	res := fake.ac["inst/"+gcActionDigest(actionID("small")).GetHash()]
	if len(res.GetOutputFiles()) != 1 || res.GetOutputFiles()[0].GetDigest().GetHash() != hex.EncodeToString(out[:]) {
		t.Fatalf("action result: %v", res)
	}

	dirB := t.TempDir()
	for round := 0; round < 2; round++ { // remote hits, then local hits
		b := startProg(t, newTestCache(t, dirB, addr))
		for name, body := range outputs {
			r := b.get(actionID(name))
			out := sha256.Sum256(body)
			got, err := os.ReadFile(r.DiskPath)
			if r.Miss || r.Size != int64(len(body)) || !bytes.Equal(r.OutputID, out[:]) || err != nil || !bytes.Equal(got, body) {
				t.Fatalf("round %d: get %s: miss=%v size=%d err=%v", round, name, r.Miss, r.Size, err)
			}
		}
		b.close()
	}
	stats := readStats(t, dirB)
	if stats[0].RemoteHits != 3 || stats[0].BytesDown != int64(len(small)+len(large)) || stats[1].LocalHits != 3 || stats[1].RemoteHits != 0 {
		t.Fatalf("machine B stats: %+v", stats)
	}
}

// The local layer is the go command's own GOCACHE layout: what the program
// writes, a go command without GOCACHEPROG reads (the entry file byte for byte
// as cmd/go/internal/cache writes it), and the other way round.
func TestGocacheDiskLayoutIsGos(t *testing.T) {
	dir := t.TempDir()
	p := startProg(t, newTestCache(t, dir, ""))
	body := []byte("output")
	action := actionID("x")
	r := p.put(action, body)
	p.close()
	out := sha256.Sum256(body)
	if r.DiskPath != filepath.Join(dir, fmt.Sprintf("%02x", out[0]), hex.EncodeToString(out[:])+"-d") {
		t.Fatalf("DiskPath %s", r.DiskPath)
	}
	entry, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%02x", action[0]), hex.EncodeToString(action)+"-a"))
	want := fmt.Sprintf("v1 %x %x %20d ", action, out, len(body))
	if len(entry) != gcEntrySize || !strings.HasPrefix(string(entry), want) {
		t.Fatalf("entry %q", entry)
	}
	// A truncated entry or a missing output is a miss, not an error.
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02x", action[0]), hex.EncodeToString(action)+"-a"), entry[:50], 0o644)
	p = startProg(t, newTestCache(t, dir, ""))
	if r := p.get(action); !r.Miss {
		t.Fatalf("truncated entry: %+v", r)
	}
	p.close()
}

// With the remote down (nothing listens), gets miss and puts succeed locally;
// the error is reported once, in the stats too.
func TestGocacheRemoteDownIsLocalOnly(t *testing.T) {
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := "grpc://" + lis.Addr().String()
	lis.Close()
	dir := t.TempDir()
	p := startProg(t, newTestCache(t, dir, addr))
	for i := 0; i < 5; i++ {
		a := actionID(fmt.Sprint(i))
		if r := p.get(a); !r.Miss || r.Err != "" {
			t.Fatalf("get: %+v", r)
		}
		if r := p.put(a, []byte{byte(i)}); r.Err != "" {
			t.Fatalf("put: %+v", r)
		}
		if r := p.get(a); r.Miss {
			t.Fatalf("get after put: %+v", r)
		}
	}
	p.close()
	if s := readStats(t, dir)[0]; s.RemoteError == "" || s.LocalHits != 5 || s.Misses != 5 || s.Uploaded != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// A blob whose bytes do not match its digest (a corrupted server) is a miss.
func TestGocacheRejectsCorruptBlob(t *testing.T) {
	fake, addr := startFakeREAPI(t)
	a := startProg(t, newTestCache(t, t.TempDir(), addr))
	a.put(actionID("p"), []byte("good bytes"))
	a.close()
	out := sha256.Sum256([]byte("good bytes"))
	fake.cas[hex.EncodeToString(out[:])] = []byte("evil bytes")
	b := startProg(t, newTestCache(t, t.TempDir(), addr))
	if r := b.get(actionID("p")); !r.Miss {
		t.Fatalf("corrupt blob served: %+v", r)
	}
	b.close()
}

// The real go command with `k4stool gocache` as GOCACHEPROG: machine B (empty
// GOCACHE) compiles nothing that machine A compiled, and links the same bytes.
func TestGocacheWithGoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds k4stool and a program twice")
	}
	_, addr := startFakeREAPI(t)
	tmp := t.TempDir()
	k4stool := filepath.Join(tmp, "k4stool")
	if out, err := exec.Command("go", "build", "-o", k4stool, "k4s.dev/tools/k4stool").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	src := filepath.Join(tmp, "hello")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.24\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport (\n\t\"encoding/json\"\n\t\"fmt\"\n)\n\nfunc main() { b, _ := json.Marshal(1); fmt.Println(string(b)) }\n"), 0o644)
	build := func(machine string) (gocacheStats, []byte) {
		dir := filepath.Join(tmp, machine)
		bin := filepath.Join(tmp, machine+".bin")
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOCACHE="+dir, "GOFLAGS=", "CGO_ENABLED=0",
			"GOCACHEPROG="+k4stool+" gocache -dir="+dir+" -remote="+addr)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		data, _ := os.ReadFile(bin)
		return readStats(t, dir)[0], data
	}
	sa, binA := build("a")
	sb, binB := build("b")
	if !bytes.Equal(binA, binB) {
		t.Fatal("different binaries")
	}
	if sa.Puts == 0 || sa.Uploaded != sa.Puts || sb.RemoteHits == 0 || sb.Puts > 2 || sb.Misses > 2 {
		t.Fatalf("machine A %+v, machine B %+v", sa, sb)
	}
}
