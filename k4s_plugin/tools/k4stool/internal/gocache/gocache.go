package gocache

// k4stool gocache: a GOCACHEPROG program (the go command's external build
// cache protocol, cmd/go/internal/cacheprog, GA since Go 1.24) with two layers:
//
//   - a local disk layer in Go's own GOCACHE layout (<dir>/xx/<action>-a index
//     entries, <dir>/xx/<output>-d outputs), in the `kuties_go_build` named
//     cache: what the go command reuses without this program, so turning the
//     shared cache on or off keeps the local cache warm;
//   - a REAPI layer (gocache_reapi.go): Go's outputs in the CAS (an OutputID
//     is the sha256 of the output, so it is the CAS digest's hash), and
//     ActionID -> OutputID in the ActionCache under a synthetic action digest.
//
// Local first; a local miss asks the remote; a put is written locally, answered,
// then uploaded in the background (the build never waits for an upload before
// `close`). Remote misses are misses; a remote error is logged once and the
// remote layer is switched off for the rest of this go command: the build
// continues with the local layer. Outputs are Go's bytes, so what the go
// command builds does not depend on which layer answered.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k4s.dev/tools/k4stool/internal/cli"
)

// gcRequest and gcResponse are cacheprog.Request and cacheprog.Response
// (cmd/go/internal/cacheprog), one JSON value per line. A put's body follows
// its request as a base64 JSON string (which encoding/json decodes into
// []byte).
type gcRequest struct {
	ID       int64
	Command  string
	ActionID []byte `json:",omitempty"`
	OutputID []byte `json:",omitempty"`
	ObjectID []byte `json:",omitempty"` // Go <= 1.23's name of OutputID
	BodySize int64  `json:",omitempty"`
}

type gcResponse struct {
	ID            int64
	Err           string     `json:",omitempty"`
	KnownCommands []string   `json:",omitempty"`
	Miss          bool       `json:",omitempty"`
	OutputID      []byte     `json:",omitempty"`
	Size          int64      `json:",omitempty"`
	Time          *time.Time `json:",omitempty"`
	DiskPath      string     `json:",omitempty"`
}

// gocacheStats are what one go command got from each layer; printed to
// stderr and appended (one JSON line) to the stats log at close.
type gocacheStats struct {
	Gets        int64   `json:"gets"`
	LocalHits   int64   `json:"local_hits"`
	RemoteHits  int64   `json:"remote_hits"`
	Misses      int64   `json:"misses"`
	Puts        int64   `json:"puts"`
	Uploaded    int64   `json:"uploaded"`
	BytesDown   int64   `json:"bytes_down"`
	BytesUp     int64   `json:"bytes_up"`
	RemoteError string  `json:"remote_error,omitempty"`
	Remote      string  `json:"remote,omitempty"`
	Seconds     float64 `json:"seconds"`
}

func CmdGocache(args []string) error {
	fs := cli.NewFlags("gocache")
	dir := fs.String("dir", "", "local cache directory (Go's GOCACHE layout)")
	remote := fs.String("remote", "", "REAPI cache: grpc://host:port (plain) or grpcs://host:port (TLS, system CAs)")
	instance := fs.String("instance", "", "REAPI instance name")
	statsLog := fs.String("stats-log", "", "append one JSON line of hit/miss counts per go command (default <dir>/k4s-gocache.log)")
	if err := fs.Parse(args, cli.NoArgs, "dir"); err != nil {
		return err
	}
	d, err := newDiskCache(*dir)
	if err != nil {
		return err
	}
	c := &goCache{disk: d, started: time.Now(), statsLog: *statsLog}
	if c.statsLog == "" {
		c.statsLog = filepath.Join(d.dir, "k4s-gocache.log")
	}
	if *remote != "" {
		c.remote, err = newRemoteCache(*remote, *instance)
		if err != nil {
			// A bad address is a configuration error, but it must not fail a
			// build either: say so and go on locally.
			fmt.Fprintf(os.Stderr, "k4s gocache: remote cache off: %v\n", err)
			c.remote = nil
		}
	}
	return c.serve(os.Stdin, os.Stdout)
}

type goCache struct {
	disk     *diskCache
	remote   *remoteCache // nil: local only
	started  time.Time
	statsLog string

	gets, localHits, remoteHits, misses, puts atomic.Int64
}

// serve answers the go command's requests until "close" or the end of in.
// Gets run concurrently (the go command sends them from its parallel build
// actions and matches answers by ID); a put's body is read before the next
// request, since it follows in the stream.
func (c *goCache) serve(in io.Reader, out io.Writer) error {
	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	var wmu sync.Mutex
	respond := func(r *gcResponse) {
		wmu.Lock()
		defer wmu.Unlock()
		enc.Encode(r)
		bw.Flush()
	}
	respond(&gcResponse{ID: 0, KnownCommands: []string{"get", "put", "close"}})

	dec := json.NewDecoder(bufio.NewReaderSize(in, 1<<20))
	var wg sync.WaitGroup
	for {
		var req gcRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			wg.Wait()
			c.finish()
			return fmt.Errorf("gocache: reading a request: %v", err)
		}
		switch req.Command {
		case "get":
			wg.Add(1)
			go func() {
				defer wg.Done()
				respond(c.get(&req))
			}()
		case "put":
			var body []byte
			if req.BodySize > 0 {
				if err := dec.Decode(&body); err != nil {
					wg.Wait()
					c.finish()
					return fmt.Errorf("gocache: reading the body of put %d: %v", req.ID, err)
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				respond(c.put(&req, body))
			}()
		case "close":
			wg.Wait()
			c.finish()
			respond(&gcResponse{ID: req.ID})
			return nil
		default:
			respond(&gcResponse{ID: req.ID, Err: fmt.Sprintf("k4s gocache: unknown command %q", req.Command)})
		}
	}
	wg.Wait()
	c.finish()
	return nil
}

func (c *goCache) get(req *gcRequest) *gcResponse {
	c.gets.Add(1)
	if len(req.ActionID) != sha256.Size {
		return &gcResponse{ID: req.ID, Err: "k4s gocache: get without a 32-byte ActionID"}
	}
	if e, ok := c.disk.get(req.ActionID); ok {
		c.localHits.Add(1)
		return &gcResponse{ID: req.ID, OutputID: e.out, Size: e.size, Time: &e.time, DiskPath: e.path}
	}
	if c.remote != nil {
		if out, body, ok := c.remote.get(req.ActionID); ok {
			if path, err := c.disk.put(req.ActionID, out, body); err == nil {
				c.remoteHits.Add(1)
				now := time.Now()
				return &gcResponse{ID: req.ID, OutputID: out, Size: int64(len(body)), Time: &now, DiskPath: path}
			}
		}
	}
	c.misses.Add(1)
	return &gcResponse{ID: req.ID, Miss: true}
}

func (c *goCache) put(req *gcRequest, body []byte) *gcResponse {
	c.puts.Add(1)
	out := req.OutputID
	if out == nil {
		out = req.ObjectID
	}
	if len(req.ActionID) != sha256.Size || len(out) != sha256.Size || int64(len(body)) != req.BodySize {
		return &gcResponse{ID: req.ID, Err: "k4s gocache: malformed put"}
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != hex.EncodeToString(out) {
		return &gcResponse{ID: req.ID, Err: "k4s gocache: put's OutputID is not the sha256 of its body"}
	}
	path, err := c.disk.put(req.ActionID, out, body)
	if err != nil {
		return &gcResponse{ID: req.ID, Err: fmt.Sprintf("k4s gocache: %v", err)}
	}
	if c.remote != nil {
		c.remote.putAsync(req.ActionID, out, body)
	}
	return &gcResponse{ID: req.ID, DiskPath: path}
}

// finish waits for the uploads, then reports the counts.
func (c *goCache) finish() {
	s := gocacheStats{
		Gets: c.gets.Load(), LocalHits: c.localHits.Load(), RemoteHits: c.remoteHits.Load(),
		Misses: c.misses.Load(), Puts: c.puts.Load(),
	}
	if c.remote != nil {
		c.remote.wait()
		s.Remote = c.remote.addr
		s.Uploaded, s.BytesDown, s.BytesUp = c.remote.uploaded.Load(), c.remote.bytesDown.Load(), c.remote.bytesUp.Load()
		s.RemoteError = c.remote.errorText()
		c.remote.close()
	}
	s.Seconds = float64(time.Since(c.started).Milliseconds()) / 1000
	msg := fmt.Sprintf("k4s gocache: %d gets: %d local hits, %d remote hits, %d misses; %d puts",
		s.Gets, s.LocalHits, s.RemoteHits, s.Misses, s.Puts)
	if c.remote != nil {
		msg += fmt.Sprintf("; remote %s: %d uploaded, %d bytes down, %d bytes up", s.Remote, s.Uploaded, s.BytesDown, s.BytesUp)
		if s.RemoteError != "" {
			msg += " (off after an error: " + s.RemoteError + ")"
		}
	}
	fmt.Fprintln(os.Stderr, msg)
	if line, err := json.Marshal(s); err == nil {
		if f, err := os.OpenFile(c.statsLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			f.Write(append(line, '\n')) // one write: O_APPEND keeps concurrent lines whole
			f.Close()
		}
	}
}

// diskCache is Go's GOCACHE directory layout (cmd/go/internal/cache/cache.go):
// <dir>/<first byte hex>/<action hex>-a holds
// "v1 <action hex> <output hex> <size %20d> <unix nanos %20d>\n", and
// <dir>/<first byte hex>/<output hex>-d the output itself.
type diskCache struct{ dir string }

type diskEntry struct {
	out  []byte
	size int64
	time time.Time
	path string
}

const gcEntrySize = 2 + 1 + 64 + 1 + 64 + 1 + 20 + 1 + 20 + 1

func newDiskCache(dir string) (*diskCache, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	return &diskCache{dir: dir}, nil
}

func (d *diskCache) file(id []byte, kind string) string {
	return filepath.Join(d.dir, fmt.Sprintf("%02x", id[0]), fmt.Sprintf("%x-%s", id, kind))
}

func (d *diskCache) get(action []byte) (diskEntry, bool) {
	name := d.file(action, "a")
	data, err := os.ReadFile(name)
	if err != nil || len(data) != gcEntrySize || string(data[:3]) != "v1 " || data[gcEntrySize-1] != '\n' {
		return diskEntry{}, false
	}
	f := strings.Fields(string(data[3:]))
	if len(f) != 4 || f[0] != hex.EncodeToString(action) {
		return diskEntry{}, false
	}
	out, err := hex.DecodeString(f[1])
	size, err2 := strconv.ParseInt(f[2], 10, 64)
	nanos, err3 := strconv.ParseInt(f[3], 10, 64)
	if err != nil || err2 != nil || err3 != nil || len(out) != sha256.Size || size < 0 {
		return diskEntry{}, false
	}
	path := d.file(out, "d")
	if st, err := os.Stat(path); err != nil || st.Size() != size {
		return diskEntry{}, false
	}
	// As the go command does: refresh mtimes at most hourly, so that its trim
	// (entries unused for 5 days) keeps what this program uses.
	now := time.Now()
	if st, err := os.Stat(name); err == nil && now.Sub(st.ModTime()) > time.Hour {
		os.Chtimes(name, now, now)
		os.Chtimes(path, now, now)
	}
	return diskEntry{out: out, size: size, time: time.Unix(0, nanos), path: path}, true
}

// put stores an output, then its index entry.
func (d *diskCache) put(action, out, body []byte) (string, error) {
	path := d.file(out, "d")
	if st, err := os.Stat(path); err != nil || st.Size() != int64(len(body)) {
		if err := writeCacheFile(path, body); err != nil {
			return "", err
		}
	}
	entry := fmt.Sprintf("v1 %x %x %20d %20d\n", action, out, len(body), time.Now().UnixNano())
	if err := writeCacheFile(d.file(action, "a"), []byte(entry)); err != nil {
		return "", err
	}
	return path, nil
}

// writeCacheFile writes a cache file through a temporary file renamed into
// place (identity.go's writeFileAtomic), so a concurrent reader sees all of it
// or nothing.
func writeCacheFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return err
	}
	return cli.WriteFileAtomic(path, data, 0o644)
}
