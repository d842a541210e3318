//go:build !k4s_download

package identity

import (
	"fmt"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
)

// Talos-style machine configs (`-machine-config controlplane|worker`): what
// `talosctl gen config` writes as controlplane.yaml and worker.yaml, here
// from the cluster identity: the node gets this one file
// (etc/k4s/identity/machine-config.yaml) instead of the separate identity
// files, and k4s-node reads it (node/cmd/k4s-node/machineconfig.go).

// MachineSettings are the machine's own settings in its config.
type MachineSettings struct {
	Type     string // controlplane or worker
	Hostname string // "": the node's default
	LAN      string // "<interface>,<address>/<prefix>", or ""
}

func (m MachineSettings) Check() error {
	if m.Type != "controlplane" && m.Type != "worker" {
		return cli.Errorf("E_USAGE", "-machine-config %q: want controlplane or worker", m.Type)
	}
	if strings.ContainsAny(m.Hostname+m.LAN, "\"\\\n") {
		return cli.Errorf("E_USAGE", "-machine-hostname and -machine-lan are plain words")
	}
	return nil
}

// machineConfigYAML renders a machine config; caKey is nil for a worker and
// endpoint is what a worker joins ("" for a control plane).
func machineConfigYAML(m MachineSettings, token, caCrt, caKey []byte, endpoint string) []byte {
	block := func(pem []byte) string {
		return "|\n      " + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n      ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# k4s machine config (Talos-style): a %s, made by k4stool vm -machine-config.\n", m.Type)
	fmt.Fprintf(&b, "version: v1alpha1\nmachine:\n  type: %s\n  token: %s\n  ca:\n    crt: %s\n", m.Type, strings.TrimSpace(string(token)), block(caCrt))
	if caKey != nil {
		fmt.Fprintf(&b, "    key: %s\n", block(caKey))
	}
	fmt.Fprintf(&b, "  network:\n    hostname: %q\n    lan: %q\n", m.Hostname, m.LAN)
	if endpoint != "" {
		fmt.Fprintf(&b, "cluster:\n  controlPlane:\n    endpoint: %q\n", endpoint)
	}
	return []byte(b.String())
}
