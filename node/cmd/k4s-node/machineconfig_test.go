package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testCrt = "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----"

func writeMachineConfig(t *testing.T, text string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, machineConfigFile), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A worker's machine config becomes the agent's join files, its flags and the
// node's part of the component table.
func TestWorkerMachineConfig(t *testing.T) {
	dir := writeMachineConfig(t, `version: v1alpha1
machine:
  type: worker
  token: abcdef.0123456789abcdef
  ca:
    crt: |
      `+strings.ReplaceAll(testCrt, "\n", "\n      ")+`
  network: {hostname: worker-1, lan: "eth1,192.168.76.2/24"}
cluster:
  controlPlane: {endpoint: "https://192.168.76.1:6443"}
`)
	mc, err := loadMachineConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	j, err := loadJoin(dir)
	if err != nil || j.server != "https://192.168.76.1:6443" || j.token() != "abcdef.0123456789abcdef" {
		t.Fatalf("join from the machine config: %+v, %v", j, err)
	}
	name, lan := "", ""
	got := mc.apply(&name, &lan, []string{"etcd", "kube-apiserver", "containerd", "kubelet", "flanneld", "coredns", "kube-proxy"})
	if !reflect.DeepEqual(got, []string{"containerd", "kubelet", "flanneld", "kube-proxy"}) || name != "worker-1" || lan != "eth1,192.168.76.2/24" {
		t.Errorf("apply: %v %q %q", got, name, lan)
	}
	// Flags already set (the image's or the kernel's) win.
	name = "w9"
	mc.apply(&name, &lan, nil)
	if name != "w9" {
		t.Errorf("node name overridden: %q", name)
	}
}

func TestMachineConfigProblems(t *testing.T) {
	if mc, err := loadMachineConfig(t.TempDir()); mc != nil || err != nil {
		t.Errorf("no machine config: %v, %v", mc, err)
	}
	for want, text := range map[string]string{
		"want v1alpha1":                           "version: v2\nmachine: {type: worker}\n",
		"want controlplane or worker":             "version: v1alpha1\nmachine: {type: router, token: a, ca: {crt: x}}\n",
		"without machine.ca.key":                  "version: v1alpha1\nmachine: {type: controlplane, token: a, ca: {crt: x}}\n",
		"a worker gets the CA's certificate only": "version: v1alpha1\nmachine: {type: worker, token: a, ca: {crt: x, key: y}}\ncluster: {controlPlane: {endpoint: 'https://a:6443'}}\n",
		"without cluster.controlPlane.endpoint":   "version: v1alpha1\nmachine: {type: worker, token: a, ca: {crt: x}}\n",
		"is not a machine config":                 "version: v1alpha1\nmachine: {type: worker, tokn: a}\n",
	} {
		_, err := loadMachineConfig(writeMachineConfig(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
