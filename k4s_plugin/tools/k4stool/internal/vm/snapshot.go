//go:build !k4s_download

package vm

// `pants run <server target> -- -snapshot FILE`: save the running node's
// datastore snapshot (node/cmd/k4s-node/snapshot.go) over the forwarded
// snapshot port, authenticated with the identity directory's admin certificate
// (system:masters); `-- -restore FILE` hands one to a booting node in the
// identity archive (/etc/k4s/identity/datastore.snapshot, restore.go).

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/contract"
	"k4s.dev/tools/k4stool/internal/identity"
)

const (
	snapshotMagic = "k4s-datastore-snapshot/1\n"
)

// checkSnapshot reads a snapshot's header and checks its body's sha256, so a
// damaged file is named here rather than on the node's console.
func checkSnapshot(path string, data []byte) (keys int, err error) {
	br := bufio.NewReader(bytes.NewReader(data))
	magic, _ := br.ReadString('\n')
	if magic != snapshotMagic {
		return 0, cli.Errorf("E_SNAPSHOT", "%s is not a k4s datastore snapshot (no %q line): take one with "+
			"`./pants run <server target> -- -snapshot FILE` while the node runs", path, snapshotMagic[:len(snapshotMagic)-1])
	}
	header, err := br.ReadBytes('\n')
	var meta struct {
		Keys   int    `json:"keys"`
		SHA256 string `json:"sha256"`
	}
	if err == nil {
		err = json.Unmarshal(header, &meta)
	}
	if err != nil {
		return 0, cli.Errorf("E_SNAPSHOT", "%s: unreadable header (%v): take the snapshot again", path, err)
	}
	body, _ := io.ReadAll(br)
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != meta.SHA256 {
		return 0, cli.Errorf("E_SNAPSHOT", "%s: the body's sha256 is not the header's (truncated or damaged): take the snapshot again", path)
	}
	return meta.Keys, nil
}

// saveSnapshot fetches the snapshot from the node through host port hostPort.
func saveSnapshot(identityDir string, hostPort int, out string, log io.Writer) error {
	if identityDir == "" {
		return cli.Errorf("E_USAGE", "-snapshot needs the node's cluster identity (set `cluster_identity=True` on the initramfs target)")
	}
	p := func(name string) string { return filepath.Join(identityDir, name) }
	cert, err := tls.LoadX509KeyPair(p("admin.crt"), p("admin.key"))
	if err != nil {
		return cli.Errorf("E_SNAPSHOT", "the admin certificate in %s: %v (boot the server with `./pants run` first)", identityDir, err)
	}
	caPEM, err := os.ReadFile(p("ca.crt"))
	if err != nil {
		return cli.Errorf("E_SNAPSHOT", "%v (boot the server with `./pants run` first)", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/snapshot", hostPort)
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return cli.Errorf("E_SNAPSHOT", "%s: %v (is the server running, with its snapshot port forwarded: -forward %d:%d?)", url, err, hostPort, contract.SnapshotPort)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return cli.Errorf("E_SNAPSHOT", "%s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return cli.Errorf("E_SNAPSHOT", "%s: HTTP %d: %s", url, resp.StatusCode, bytes.TrimSpace(data))
	}
	keys, err := checkSnapshot(url, data)
	if err != nil {
		return err
	}
	if err := cli.WriteFileAtomic(out, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(log, "k4s: datastore snapshot: %s (%d keys, %d bytes, %s); restore with -restore %s\n",
		out, keys, len(data), time.Since(start).Round(time.Millisecond), out)
	return nil
}

// restoreFile is the identity archive's entry for -restore FILE.
func restoreFile(path string) (identity.File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return identity.File{}, cli.Errorf("E_SNAPSHOT", "-restore: %v", err)
	}
	if _, err := checkSnapshot(path, data); err != nil {
		return identity.File{}, err
	}
	return identity.File{Name: contract.Snapshot, Data: data, Mode: 0o600}, nil
}
