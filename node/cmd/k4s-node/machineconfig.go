package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// A Talos-style machine config (the talos-like profile): one file handed to
// the node at boot that says what the machine is and how it joins, as
// `talosctl gen config` writes controlplane.yaml and worker.yaml. `pants run
// <target> -- -machine-config controlplane` (or `worker`, with -join) writes
// it in the target's identity directory and hands it over in place of the
// separate identity files (k4stool machineconfig.go):
//
//	version: v1alpha1
//	machine:
//	  type: controlplane          # or worker
//	  token: abcdef.0123456789abcdef
//	  ca: {crt: <PEM>, key: <PEM>} # a worker gets crt only
//	  network: {hostname: cp-1, lan: "eth1,192.168.76.1/24"}
//	cluster:
//	  controlPlane: {endpoint: "https://192.168.76.1:6443"}  # what a worker joins
//
// k4s-node turns it into what it reads otherwise: the identity files
// (identity.go, join.go), the flags -node-name and -lan, and, for a worker,
// the node's part of the image's component table. One image serves both
// machine types, as one Talos image does. Its name under identityDir is
// machineConfigFile (generated at the end of identity.go).

type machineConfig struct {
	Version string `json:"version"`
	Machine struct {
		Type  string `json:"type"`
		Token string `json:"token"`
		CA    struct {
			Crt string `json:"crt"`
			Key string `json:"key"`
		} `json:"ca"`
		Network struct {
			Hostname string `json:"hostname"`
			LAN      string `json:"lan"`
		} `json:"network"`
	} `json:"machine"`
	Cluster struct {
		ControlPlane struct {
			Endpoint string `json:"endpoint"`
		} `json:"controlPlane"`
	} `json:"cluster"`
}

// workerComponents are what a worker runs of the image's component table.
var workerComponents = map[string]bool{"containerd": true, "kubelet": true, "flanneld": true, "kube-router": true, "kube-proxy": true, netpolComponent: true}

// loadMachineConfig reads dir's machine config, if there is one, and writes the
// identity files it holds into dir. It returns nil when there is none.
func loadMachineConfig(dir string) (*machineConfig, error) {
	path := filepath.Join(dir, machineConfigFile)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, &identityError{path, err.Error()}
	}
	var mc machineConfig
	if err := yaml.UnmarshalStrict(data, &mc); err != nil {
		return nil, &identityError{path, "is not a machine config: " + err.Error()}
	}
	if mc.Version != "v1alpha1" {
		return nil, &identityError{path, fmt.Sprintf("has version %q, want v1alpha1", mc.Version)}
	}
	files := map[string]string{caCertFile: mc.Machine.CA.Crt, joinTokenFile: mc.Machine.Token}
	switch mc.Machine.Type {
	case "controlplane":
		if mc.Machine.CA.Key == "" {
			return nil, &identityError{path, "is a controlplane config without machine.ca.key"}
		}
		files[caKeyFile] = mc.Machine.CA.Key
	case "worker":
		if mc.Machine.CA.Key != "" {
			return nil, &identityError{path, "is a worker config with machine.ca.key: a worker gets the CA's certificate only"}
		}
		if mc.Cluster.ControlPlane.Endpoint == "" {
			return nil, &identityError{path, "is a worker config without cluster.controlPlane.endpoint"}
		}
		files[serverFile] = mc.Cluster.ControlPlane.Endpoint
	default:
		return nil, &identityError{path, fmt.Sprintf("has machine.type %q, want controlplane or worker", mc.Machine.Type)}
	}
	if mc.Machine.CA.Crt == "" || mc.Machine.Token == "" {
		return nil, &identityError{path, "lacks machine.ca.crt or machine.token"}
	}
	for name, content := range files {
		mode := os.FileMode(0o600)
		if name == caCertFile || name == serverFile {
			mode = 0o644
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.TrimSpace(content)+"\n"), mode); err != nil {
			return nil, err
		}
	}
	log.Printf("machine config: a %s from %s", mc.Machine.Type, path)
	return &mc, nil
}

// apply sets the flags the machine config gives, where neither the image nor
// the kernel command line set them, and returns the components a machine of
// its type runs.
func (mc *machineConfig) apply(nodeName, lan *string, components []string) []string {
	if *nodeName == "" {
		*nodeName = mc.Machine.Network.Hostname
	}
	if *lan == "" {
		*lan = mc.Machine.Network.LAN
	}
	if mc.Machine.Type != "worker" {
		return components
	}
	var out []string
	for _, c := range components {
		if workerComponents[c] {
			out = append(out, c)
		}
	}
	return out
}
