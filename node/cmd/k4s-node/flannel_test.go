package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadEnvFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "subnet.env")
	os.WriteFile(p, []byte("FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"), 0o644)
	env, err := readEnvFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if env["FLANNEL_SUBNET"] != "10.42.1.1/24" || env["FLANNEL_MTU"] != "1450" || env["FLANNEL_NETWORK"] != "10.42.0.0/16" {
		t.Errorf("readEnvFile = %v", env)
	}
}
