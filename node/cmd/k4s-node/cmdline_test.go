package main

import (
	"flag"
	"testing"
)

func TestKernelFlagsSetFlags(t *testing.T) {
	fs := flag.NewFlagSet("k4s-node", flag.ContinueOnError)
	name := fs.String("node-name", "", "")
	lan := fs.String("lan", "", "")
	applyKernelFlags(fs, "console=ttyS0 k4s.node-name=w1 k4s.lan=eth1,192.168.76.2/24 k4s.nope=1 k4sx=2")
	if *name != "w1" || *lan != "eth1,192.168.76.2/24" {
		t.Errorf("node-name=%q lan=%q", *name, *lan)
	}
	// The image's own flags win.
	if err := fs.Parse([]string{"-node-name", "server"}); err != nil || *name != "server" {
		t.Errorf("after Parse: %q, %v", *name, err)
	}
}

func TestParseLAN(t *testing.T) {
	l, err := parseLAN("eth1,192.168.76.2/24")
	if err != nil || l.iface != "eth1" || l.addr.String() != "192.168.76.2/24" || l.network().String() != "192.168.76.0/24" {
		t.Fatalf("parseLAN = %+v, %v", l, err)
	}
	for _, bad := range []string{"eth1", "192.168.76.2/24", "eth1,192.168.76.2", ",1.2.3.4/8", "eth1,fd00::1/64"} {
		if _, err := parseLAN(bad); err == nil {
			t.Errorf("parseLAN(%q) accepted", bad)
		}
	}
	if l, err := parseLAN(""); l != nil || err != nil {
		t.Errorf("parseLAN(\"\") = %v, %v", l, err)
	}
}
