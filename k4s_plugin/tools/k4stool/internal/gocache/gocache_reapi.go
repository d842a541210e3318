//go:build !k4s_download

package gocache

// The REAPI layer of `k4stool gocache`: the go command's build cache in a
// REAPI ActionCache + CAS (Bazel's Remote Execution API v2, as BuildGrid,
// Buildbarn, NativeLink, bazel-remote and buildbox-casd serve it).
//
//   - An output is a CAS blob: its digest is {OutputID in hex, size}, since Go's
//     OutputID is the sha256 of the output's bytes (cmd/go/internal/cache).
//   - ActionID -> OutputID is an ActionResult with one output file "o" (that
//     blob), stored in the ActionCache under a synthetic action digest:
//     sha256("k4s-gocache-v1:" + ActionID) (size: the length of that string),
//     a namespace no Bazel/Pants Action (the sha256 of a serialized Action
//     proto) can produce in practice.
//
// Small blobs travel in BatchReadBlobs/BatchUpdateBlobs, larger ones over
// ByteStream (whose two messages are encoded here with protowire: the
// google.golang.org/genproto module that has them pulls in all of Google
// Cloud's modules). Every fetched blob is re-hashed before it is used.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const (
	gcActionPrefix = "k4s-gocache-v1:"
	gcOutputPath   = "o"
	gcBatchMax     = 1 << 20 // larger blobs go over ByteStream
	gcChunk        = 1 << 20 // ByteStream write chunk
	gcUploaders    = 4
)

type remoteCache struct {
	addr, instance string
	conn           *grpc.ClientConn
	ac             repb.ActionCacheClient
	cas            repb.ContentAddressableStorageClient

	off, writeOff atomic.Bool
	errMu         sync.Mutex
	errText       string

	pending sync.WaitGroup
	slots   chan struct{}

	uploaded, bytesDown, bytesUp atomic.Int64
}

// newRemoteCache connects (lazily: no RPC until the first get or put) to
// grpc://host:port (plaintext) or grpcs://host:port (TLS, the system's CAs).
// No credentials: a token would have to reach the sandbox through the step's
// argv or env, which are its cache key and are sent to the Pants remote cache.
func newRemoteCache(addr, instance string) (*remoteCache, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%q is not grpc://host:port or grpcs://host:port", addr)
	}
	var creds credentials.TransportCredentials
	switch u.Scheme {
	case "grpc", "http":
		creds = insecure.NewCredentials()
	case "grpcs", "https":
		creds = credentials.NewTLS(&tls.Config{ServerName: u.Hostname()})
	default:
		return nil, fmt.Errorf("%q: the scheme must be grpc:// or grpcs://", addr)
	}
	conn, err := grpc.NewClient(u.Host,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(reapiCodec{}), grpc.MaxCallRecvMsgSize(64<<20)),
	)
	if err != nil {
		return nil, err
	}
	return &remoteCache{
		addr: addr, instance: instance, conn: conn,
		ac: repb.NewActionCacheClient(conn), cas: repb.NewContentAddressableStorageClient(conn),
		slots: make(chan struct{}, gcUploaders),
	}, nil
}

func gcActionDigest(action []byte) *repb.Digest {
	pre := append([]byte(gcActionPrefix), action...)
	sum := sha256.Sum256(pre)
	return &repb.Digest{Hash: hex.EncodeToString(sum[:]), SizeBytes: int64(len(pre))}
}

// fail switches the remote layer off (reads and writes, or only writes) after
// an error and reports the first one; the build goes on with the local layer.
func (r *remoteCache) fail(what string, err error, writesOnly bool) {
	if writesOnly {
		r.writeOff.Store(true)
	} else {
		r.off.Store(true)
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.errText == "" {
		r.errText = fmt.Sprintf("%s: %v", what, err)
		fmt.Fprintf(os.Stderr, "k4s gocache: remote cache %s: %s; going on with the local cache only\n", r.addr, r.errText)
	}
}

func (r *remoteCache) errorText() string {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.errText
}

// get returns the output of action from the remote cache, verified, or !ok.
func (r *remoteCache) get(action []byte) (out, body []byte, ok bool) {
	if r.off.Load() {
		return nil, nil, false
	}
	// A lookup is small: a server that does not answer it in 20 s is treated as
	// down (then this go command stops asking); a blob gets 2 minutes.
	actx, acancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer acancel()
	res, err := r.ac.GetActionResult(actx, &repb.GetActionResultRequest{
		InstanceName: r.instance, ActionDigest: gcActionDigest(action), InlineOutputFiles: []string{gcOutputPath},
	})
	if status.Code(err) == codes.NotFound {
		return nil, nil, false
	}
	if err != nil {
		r.fail("GetActionResult", err, false)
		return nil, nil, false
	}
	var f *repb.OutputFile
	for _, o := range res.GetOutputFiles() {
		if o.GetPath() == gcOutputPath {
			f = o
		}
	}
	if f == nil || f.GetDigest() == nil || f.GetDigest().GetSizeBytes() < 0 {
		return nil, nil, false
	}
	out, err = hex.DecodeString(f.GetDigest().GetHash())
	if err != nil || len(out) != sha256.Size {
		return nil, nil, false
	}
	size := f.GetDigest().GetSizeBytes()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	switch {
	case int64(len(f.GetContents())) == size:
		body = f.GetContents()
	case size <= gcBatchMax:
		resp, err := r.cas.BatchReadBlobs(ctx, &repb.BatchReadBlobsRequest{InstanceName: r.instance, Digests: []*repb.Digest{f.GetDigest()}})
		if err != nil {
			r.fail("BatchReadBlobs", err, false)
			return nil, nil, false
		}
		if len(resp.GetResponses()) != 1 || codes.Code(resp.GetResponses()[0].GetStatus().GetCode()) != codes.OK {
			return nil, nil, false // evicted: a miss
		}
		body = resp.GetResponses()[0].GetData()
	default:
		body, err = r.readBlob(ctx, f.GetDigest())
		if status.Code(err) == codes.NotFound {
			return nil, nil, false
		}
		if err != nil {
			r.fail("ByteStream.Read", err, false)
			return nil, nil, false
		}
	}
	if sum := sha256.Sum256(body); int64(len(body)) != size || hex.EncodeToString(sum[:]) != f.GetDigest().GetHash() {
		return nil, nil, false // never use a blob that is not what its digest says
	}
	r.bytesDown.Add(size)
	return out, body, true
}

// putAsync uploads the output (unless the CAS has it) and then the action's
// entry, in the background, at most gcUploaders at a time; wait waits for them.
func (r *remoteCache) putAsync(action, out, body []byte) {
	if r.off.Load() || r.writeOff.Load() {
		return
	}
	r.pending.Add(1)
	go func() {
		defer r.pending.Done()
		r.slots <- struct{}{}
		defer func() { <-r.slots }()
		if r.off.Load() || r.writeOff.Load() {
			return
		}
		if err := r.put(action, out, body); err != nil {
			c := status.Code(err)
			r.fail("upload", err, c == codes.PermissionDenied || c == codes.Unauthenticated)
		}
	}()
}

func (r *remoteCache) put(action, out, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := &repb.Digest{Hash: hex.EncodeToString(out), SizeBytes: int64(len(body))}
	if len(body) > 0 {
		missing := true
		if len(body) > gcBatchMax { // small blobs: uploading is as cheap as asking
			fm, err := r.cas.FindMissingBlobs(ctx, &repb.FindMissingBlobsRequest{InstanceName: r.instance, BlobDigests: []*repb.Digest{d}})
			if err != nil {
				return err
			}
			missing = len(fm.GetMissingBlobDigests()) > 0
		}
		if missing {
			if len(body) <= gcBatchMax {
				resp, err := r.cas.BatchUpdateBlobs(ctx, &repb.BatchUpdateBlobsRequest{
					InstanceName: r.instance, Requests: []*repb.BatchUpdateBlobsRequest_Request{{Digest: d, Data: body}},
				})
				if err != nil {
					return err
				}
				for _, s := range resp.GetResponses() {
					if codes.Code(s.GetStatus().GetCode()) != codes.OK {
						return status.ErrorProto(s.GetStatus())
					}
				}
			} else if err := r.writeBlob(ctx, d, body); err != nil {
				return err
			}
			r.bytesUp.Add(int64(len(body)))
		}
	}
	_, err := r.ac.UpdateActionResult(ctx, &repb.UpdateActionResultRequest{
		InstanceName: r.instance, ActionDigest: gcActionDigest(action),
		ActionResult: &repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: gcOutputPath, Digest: d}}},
	})
	if err == nil {
		r.uploaded.Add(1)
	}
	return err
}

func (r *remoteCache) wait() { r.pending.Wait() }

func (r *remoteCache) close() { r.conn.Close() }

func (r *remoteCache) resource(kind string, d *repb.Digest) string {
	name := fmt.Sprintf("blobs/%s/%d", d.GetHash(), d.GetSizeBytes())
	if kind != "" {
		name = kind + "/" + name
	}
	if r.instance != "" {
		name = r.instance + "/" + name
	}
	return name
}

var (
	bsRead  = &grpc.StreamDesc{StreamName: "Read", ServerStreams: true}
	bsWrite = &grpc.StreamDesc{StreamName: "Write", ClientStreams: true}
)

func (r *remoteCache) readBlob(ctx context.Context, d *repb.Digest) ([]byte, error) {
	s, err := r.conn.NewStream(ctx, bsRead, "/google.bytestream.ByteStream/Read")
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(&bsReadRequest{ResourceName: r.resource("", d)}); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	body := make([]byte, 0, d.GetSizeBytes())
	for {
		var m bsReadResponse
		if err := s.RecvMsg(&m); err == io.EOF {
			return body, nil
		} else if err != nil {
			return nil, err
		}
		body = append(body, m.Data...)
		if int64(len(body)) > d.GetSizeBytes() {
			return nil, fmt.Errorf("blob %s is larger than its digest says", d.GetHash())
		}
	}
}

func (r *remoteCache) writeBlob(ctx context.Context, d *repb.Digest, body []byte) error {
	s, err := r.conn.NewStream(ctx, bsWrite, "/google.bytestream.ByteStream/Write")
	if err != nil {
		return err
	}
	name := r.resource("uploads/"+gcUploadID(), d)
	for off := 0; off < len(body); off += gcChunk {
		end := min(off+gcChunk, len(body))
		m := &bsWriteRequest{WriteOffset: int64(off), Data: body[off:end], FinishWrite: end == len(body)}
		if off == 0 {
			m.ResourceName = name
		}
		if err := s.SendMsg(m); err != nil {
			if err == io.EOF { // the server ended the stream: its status says why
				break
			}
			return err
		}
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	var resp bsWriteResponse
	if err := s.RecvMsg(&resp); err != nil {
		return err
	}
	if resp.CommittedSize != int64(len(body)) && resp.CommittedSize != -1 {
		return fmt.Errorf("ByteStream.Write of %s committed %d of %d bytes", d.GetHash(), resp.CommittedSize, len(body))
	}
	return nil
}

// gcUploadID is a random UUID (version 4) for a ByteStream upload name.
func gcUploadID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("00000000-0000-4000-8000-%012x", time.Now().UnixNano()&0xffffffffffff)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// The ByteStream messages (google/bytestream/bytestream.proto), by hand.
type bsReadRequest struct {
	ResourceName          string
	ReadOffset, ReadLimit int64
}
type bsReadResponse struct{ Data []byte }
type bsWriteRequest struct {
	ResourceName string
	WriteOffset  int64
	FinishWrite  bool
	Data         []byte
}
type bsWriteResponse struct{ CommittedSize int64 }

type wireMessage interface {
	marshalWire() []byte
	unmarshalWire([]byte) error
}

func (m *bsReadRequest) marshalWire() []byte {
	var b []byte
	if m.ResourceName != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, m.ResourceName)
	}
	if m.ReadOffset != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.ReadOffset))
	}
	if m.ReadLimit != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.ReadLimit))
	}
	return b
}

func (m *bsReadRequest) unmarshalWire(b []byte) error {
	return walkWire(b, func(num protowire.Number, v uint64, bs []byte) {
		switch num {
		case 1:
			m.ResourceName = string(bs)
		case 2:
			m.ReadOffset = int64(v)
		case 3:
			m.ReadLimit = int64(v)
		}
	})
}

func (m *bsReadResponse) marshalWire() []byte {
	b := protowire.AppendTag(nil, 10, protowire.BytesType)
	return protowire.AppendBytes(b, m.Data)
}

func (m *bsReadResponse) unmarshalWire(b []byte) error {
	return walkWire(b, func(num protowire.Number, v uint64, bs []byte) {
		if num == 10 {
			m.Data = append([]byte(nil), bs...)
		}
	})
}

func (m *bsWriteRequest) marshalWire() []byte {
	var b []byte
	if m.ResourceName != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, m.ResourceName)
	}
	if m.WriteOffset != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.WriteOffset))
	}
	if m.FinishWrite {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	b = protowire.AppendTag(b, 10, protowire.BytesType)
	return protowire.AppendBytes(b, m.Data)
}

func (m *bsWriteRequest) unmarshalWire(b []byte) error {
	return walkWire(b, func(num protowire.Number, v uint64, bs []byte) {
		switch num {
		case 1:
			m.ResourceName = string(bs)
		case 2:
			m.WriteOffset = int64(v)
		case 3:
			m.FinishWrite = v != 0
		case 10:
			m.Data = append([]byte(nil), bs...)
		}
	})
}

func (m *bsWriteResponse) marshalWire() []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(m.CommittedSize))
}

func (m *bsWriteResponse) unmarshalWire(b []byte) error {
	return walkWire(b, func(num protowire.Number, v uint64, bs []byte) {
		if num == 1 {
			m.CommittedSize = int64(v)
		}
	})
}

// walkWire calls f for each varint or bytes field of a protobuf message.
func walkWire(b []byte, f func(num protowire.Number, v uint64, bs []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			f(num, v, nil)
			b = b[n:]
		case protowire.BytesType:
			bs, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			f(num, 0, bs)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// reapiCodec is gRPC's proto codec plus the hand-encoded ByteStream messages.
type reapiCodec struct{}

func (reapiCodec) Name() string { return "proto" }

func (reapiCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case wireMessage:
		return m.marshalWire(), nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("reapiCodec: cannot marshal %T", v)
}

func (reapiCodec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case wireMessage:
		return m.unmarshalWire(data)
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return errors.New("reapiCodec: cannot unmarshal " + strings.TrimPrefix(fmt.Sprintf("%T", v), "*"))
}
