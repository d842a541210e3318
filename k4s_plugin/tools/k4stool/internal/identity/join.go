//go:build !k4s_download

package identity

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/contract"
)

// Joining an agent to a cluster (`pants run <agent target> -- -join <server's
// identity directory> -join-server https://<server>:6443`), as `k3s agent
// --server --token` does: the agent gets the cluster CA's certificate (never
// its key), the server's bootstrap token and the server's URL; its kubelet
// then bootstraps its own credentials (k4s-node, join.go).

var joinTokenFormat = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// loadOrCreateJoinToken reads a bootstrap token (<id>.<secret>, Kubernetes'
// format) from path, or makes one (0600).
func loadOrCreateJoinToken(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if !joinTokenFormat.Match(bytesTrim(data)) {
			return nil, fmt.Errorf("%s is not a bootstrap token <6 of [a-z0-9]>.<16 of [a-z0-9]>", path)
		}
		return bytesTrim(data), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 23)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return nil, err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	b[6] = '.'
	if err := cli.WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

func bytesTrim(b []byte) []byte { return []byte(strings.TrimSpace(string(b))) }

// JoinRequest is what `k4stool vm -join` asks of prepareJoin.
type JoinRequest struct {
	Dir     string          // the agent target's own identity directory (initrd.img goes there)
	Cluster string          // the server's identity directory (ca.crt, join-token)
	Server  string          // the server's apiserver URL as the agent reaches it
	Image   string          // the agent's initramfs
	Machine MachineSettings // Type "worker": hand a worker.yaml machine config instead
}

// PrepareJoin writes the agent's initrd: its image, then etc/k4s/identity
// with the cluster's ca.crt, join-token and server.
func PrepareJoin(req JoinRequest, log io.Writer) (string, error) {
	if !strings.HasPrefix(req.Server, "https://") {
		return "", cli.Errorf("E_USAGE", "-join-server %q: want the server's apiserver URL as the agent reaches it, e.g. https://192.168.76.1:6443", req.Server)
	}
	cluster, err := filepath.Abs(req.Cluster)
	if err != nil {
		return "", err
	}
	caPEM, err := os.ReadFile(filepath.Join(cluster, "ca.crt"))
	if err != nil {
		return "", cli.Errorf("E_IDENTITY", "-join %s: %v: name the identity directory of a server that has been started with `pants run` (.k4s/clusters/<server target>)", req.Cluster, err)
	}
	token, err := os.ReadFile(filepath.Join(cluster, contract.JoinToken))
	if err != nil {
		return "", cli.Errorf("E_IDENTITY", "-join %s: %v: start the server once with `pants run` (it makes the join token)", req.Cluster, err)
	}
	if !joinTokenFormat.Match(bytesTrim(token)) {
		return "", cli.Errorf("E_IDENTITY", "-join %s: %s is not a bootstrap token", req.Cluster, contract.JoinToken)
	}
	dir, err := filepath.Abs(req.Dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	files := []File{
		{contract.CACert, caPEM, 0o644}, {contract.JoinToken, bytesTrim(token), 0o600}, {contract.Server, []byte(req.Server), 0o644},
	}
	if req.Machine.Type != "" {
		if req.Machine.Type != "worker" {
			return "", cli.Errorf("E_USAGE", "-join with -machine-config %s: a joining node is a worker", req.Machine.Type)
		}
		mc := machineConfigYAML(req.Machine, token, caPEM, nil, req.Server)
		if err := cli.WriteFileAtomic(filepath.Join(dir, "worker.yaml"), mc, 0o600); err != nil {
			return "", err
		}
		files = []File{{contract.MachineConfig, mc, 0o600}}
	}
	initrd, err := writeIdentityInitrd(dir, req.Image, files)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "k4s: joining the cluster of %s at %s (the agent gets its CA certificate and join token)\n", cluster, req.Server)
	return initrd, nil
}
