package main

// TestKnftablesNetns runs kube-proxy-shaped transactions (kubeproxy_test.go)
// through the real sigs.k8s.io/knftables API twice, each time in a fresh
// network namespace: once with this nft first on PATH and once with the C
// nft (Debian's nftables package). After every sync it records what the
// kernel holds, as printed by the C `nft list ruleset`, and requires both
// runs to leave identical rulesets. Each run also checks the knftables read
// API (List, ListElements, ListRules, ListCounters), its error
// classification (IsNotFound, IsAlreadyExists), and that the rules work:
// connections to ClusterIPs are DNATed to local listeners, and ports without
// endpoints are rejected.
//
// It needs root, unshare(1), ip(8) and /usr/sbin/nft, and runs only with
// NFT_NETNS_TEST=1 (tests/integration/test_nft.py sets it). NFT_BINARY names a prebuilt
// CGO_ENABLED=0 binary of this command; otherwise the test builds one.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/knftables"
)

var ctx = context.Background()

const cNft = "/usr/sbin/nft"

var stages = []string{"1-full-sync", "2-partial-sync", "3-stale-chains-deleted", "4-restart-full-sync"}

func TestKnftablesNetns(t *testing.T) {
	if os.Getenv("NFT_NETNS_TEST") == "" {
		t.Skip("set NFT_NETNS_TEST=1 (needs root and a kernel with nf_tables)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root")
	}
	if _, err := os.Stat(cNft); err != nil {
		t.Fatalf("the C nft is needed for comparison: %v (apt-get install nftables)", err)
	}
	dir := t.TempDir()
	ours := filepath.Join(dir, "ours")
	theirs := filepath.Join(dir, "theirs")
	for _, d := range []string{ours, theirs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if bin := os.Getenv("NFT_BINARY"); bin != "" {
		if err := os.Symlink(bin, filepath.Join(ours, "nft")); err != nil {
			t.Fatal(err)
		}
	} else {
		build := exec.Command("go", "build", "-o", filepath.Join(ours, "nft"), ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	if err := os.Symlink(cNft, filepath.Join(theirs, "nft")); err != nil {
		t.Fatal(err)
	}

	results := map[string]string{}
	for _, impl := range []string{ours, theirs} {
		out := filepath.Join(impl, "out")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run", "^TestKnftablesNetnsChild$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "NFT_CHILD_OUT="+out, "PATH="+impl+":/usr/sbin:/usr/bin:/sbin:/bin")
		log, err := cmd.CombinedOutput()
		t.Logf("run with %s/nft:\n%s", impl, log)
		if err != nil {
			t.Fatalf("child with %s/nft failed: %v", filepath.Base(impl), err)
		}
		for _, stage := range stages {
			b, err := os.ReadFile(filepath.Join(out, stage+".ruleset"))
			if err != nil {
				t.Fatal(err)
			}
			results[filepath.Base(impl)+"/"+stage] = normalizeRuleset(string(b))
		}
	}
	for _, stage := range stages {
		o, c := results["ours/"+stage], results["theirs/"+stage]
		if o != c {
			t.Errorf("stage %s: rulesets differ (C nft listing of the kernel state)\n--- C nft\n%s\n--- this nft\n%s\n%s",
				stage, c, o, lineDiff(c, o))
		} else if !strings.Contains(o, "table ip kube-proxy") && stage != "" {
			t.Errorf("stage %s: no kube-proxy table in\n%s", stage, o)
		}
	}
}

// normalizeRuleset sorts the elements of each `elements = { ... }` block:
// hash sets list their elements in a per-set random order.
func normalizeRuleset(s string) string {
	var out []string
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimSpace(l)
		if !strings.HasPrefix(trimmed, "elements = {") {
			out = append(out, l)
			continue
		}
		block := trimmed
		for !strings.HasSuffix(strings.TrimSpace(block), "}") && i+1 < len(lines) {
			i++
			block += " " + strings.TrimSpace(lines[i])
		}
		body := strings.TrimSuffix(strings.TrimPrefix(block, "elements = {"), "}")
		var elems []string
		for _, e := range strings.Split(body, ",") {
			elems = append(elems, strings.TrimSpace(e))
		}
		sort.Strings(elems)
		out = append(out, "\t\telements = { "+strings.Join(elems, ", ")+" }")
	}
	return strings.Join(out, "\n")
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var d []string
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			d = append(d, fmt.Sprintf("line %d:\n  C:    %s\n  this: %s", i+1, x, y))
		}
	}
	return strings.Join(d, "\n")
}

// TestKnftablesNetnsChild runs inside the namespace; see TestKnftablesNetns.
func TestKnftablesNetnsChild(t *testing.T) {
	out := os.Getenv("NFT_CHILD_OUT")
	if out == "" {
		t.Skip("run by TestKnftablesNetns")
	}
	path, err := exec.LookPath("nft")
	if err != nil {
		t.Fatal(err)
	}
	version, _ := exec.Command(path, "--version").Output()
	t.Logf("nft is %s: %s", path, strings.TrimSpace(string(version)))
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", "10.180.0.10/32", "dev", "lo"},
		{"addr", "add", "10.180.0.11/32", "dev", "lo"},
		// Local addresses with listeners behind the rejected destinations
		// below: without the reject rules these connections would succeed.
		{"addr", "add", "172.30.0.41/32", "dev", "lo"},
		{"addr", "add", "172.30.0.46/32", "dev", "lo"},
		{"route", "add", "172.30.0.0/16", "dev", "lo"},
	} {
		if b, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, b)
		}
	}

	// knftables.New runs `nft --version` and `nft --check` probes.
	nft, err := knftables.New(knftables.IPv4Family, "kube-proxy")
	if err != nil {
		t.Fatalf("knftables.New: %v", err)
	}
	if _, err := nft.List(ctx, "chains"); !knftables.IsNotFound(err) {
		t.Errorf("List before the table exists: err = %v, want not-found", err)
	}

	record := func(stage string, tx *knftables.Transaction) {
		t.Helper()
		listing, err := exec.Command(cNft, "list", "ruleset").CombinedOutput()
		if err != nil {
			t.Fatalf("%s list ruleset: %v\n%s", cNft, err, listing)
		}
		if err := os.WriteFile(filepath.Join(out, stage+".ruleset"), listing, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(out, stage+".tx"), []byte(tx.String()), 0o644)
	}
	listeners := startListeners(t, "10.180.0.10:8080", "10.180.0.10:8081", "10.180.0.11:8081", "10.180.0.10:8082",
		"172.30.0.41:81", "172.30.0.46:80")
	expectConnect(t, listeners, "172.30.0.46:80", "172.30.0.46:80") // reachable before kube-proxy's rules

	// 1: kube-proxy's first sync.
	s := newSyncer(nft)
	tx, err := s.sync([]service{svc1, svc2, svc3, svc5, svc6}, true, true, true)
	if err != nil {
		t.Fatalf("sync 1: %v\ntransaction:\n%s", err, tx)
	}
	record(stages[0], tx)
	checkReads(t, nft)
	expectConnect(t, listeners, "172.30.0.41:80", "10.180.0.10:8080")
	expectConnect(t, listeners, "172.30.0.42:80", "10.180.0.10:8081", "10.180.0.11:8081")
	expectRefused(t, "172.30.0.46:80") // no endpoints: reject-chain
	expectRefused(t, "172.30.0.41:81") // unknown port of a ClusterIP: cluster-ips-check

	// 2: a partial sync: svc1's endpoint moved, svc3 is gone, svc7 is new.
	services := []service{svc1b, svc2, svc5, svc6, svc7}
	if tx, err = s.sync(services, false, false, true); err != nil {
		t.Fatalf("sync 2: %v\ntransaction:\n%s", err, tx)
	}
	record(stages[1], tx)
	if !strings.Contains(tx.String(), "delete element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 }") {
		t.Errorf("sync 2 did not delete svc3's map element:\n%s", tx)
	}
	expectConnect(t, listeners, "172.30.0.41:80", "10.180.0.10:8082")

	// 3: the next sync deletes the chains that went stale in sync 2.
	if tx, err = s.sync(services, false, false, true); err != nil {
		t.Fatalf("sync 3: %v\ntransaction:\n%s", err, tx)
	}
	if !strings.Contains(tx.String(), "delete chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80") {
		t.Errorf("sync 3 did not delete svc3's chain:\n%s", tx)
	}
	record(stages[2], tx)

	// 4: a restarted kube-proxy (new state, read back with ListElements):
	// base chains are added and deleted once, localhost rejects turned off.
	s = newSyncer(nft)
	if tx, err = s.sync(services, true, true, false); err != nil {
		t.Fatalf("sync 4: %v\ntransaction:\n%s", err, tx)
	}
	record(stages[3], tx)
	if strings.Contains(tx.String(), "add element ip kube-proxy service-ips { 172.30.0.41") {
		t.Errorf("restart re-added an element it should have read back with ListElements:\n%s", tx)
	}
	expectConnect(t, listeners, "172.30.0.41:80", "10.180.0.10:8082")

	checkErrors(t, nft)
}

// checkReads checks knftables' read API after sync 1.
func checkReads(t *testing.T, nft knftables.Interface) {
	t.Helper()
	chains, err := nft.List(ctx, "chains")
	if err != nil {
		t.Fatalf("List chains: %v", err)
	}
	for _, want := range []string{"services", "nat-output", svc1.svcChain(), svc5.epChain(svc5.endpoints[1]), "localhost-nodeport-reject-tcp"} {
		if !contains(chains, want) {
			t.Errorf("List(chains) = %v, missing %s", chains, want)
		}
	}
	sets, err := nft.List(ctx, "sets")
	if err != nil || !contains(sets, "cluster-ips") || !contains(sets, svc5.affinitySet(svc5.endpoints[0])) || contains(sets, "service-ips") {
		t.Errorf("List(sets) = %v, %v", sets, err)
	}
	maps, err := nft.List(ctx, "maps")
	if err != nil || !contains(maps, "service-ips") || contains(maps, "cluster-ips") {
		t.Errorf("List(maps) = %v, %v", maps, err)
	}
	all, err := nft.ListAll(ctx)
	if err != nil || len(all["chain"]) != len(chains) || len(all["counter"]) != 3 {
		t.Errorf("ListAll = %v, %v", all, err)
	}

	elems, err := nft.ListElements(ctx, "map", "service-ips")
	if err != nil {
		t.Fatalf("ListElements service-ips: %v", err)
	}
	got := map[string]string{}
	for _, e := range elems {
		got[strings.Join(e.Key, " . ")] = strings.Join(e.Value, " . ")
	}
	want := map[string]string{
		"172.30.0.41 . tcp . 80": "goto " + svc1.svcChain(),
		"172.30.0.42 . tcp . 80": "goto " + svc2.svcChain(),
		"1.2.3.4 . tcp . 80":     "goto " + svc2.extChain(),
		"172.30.0.43 . tcp . 80": "goto " + svc3.svcChain(),
		"172.30.0.45 . tcp . 80": "goto " + svc5.svcChain(),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ListElements(service-ips) = %v\nwant %v", got, want)
	}
	elems, err = nft.ListElements(ctx, "map", "no-endpoint-services")
	if err != nil || len(elems) != 1 || elems[0].Comment == nil || *elems[0].Comment != svc6.name ||
		strings.Join(elems[0].Value, " ") != "goto reject-chain" {
		t.Errorf("ListElements(no-endpoint-services) = %+v, %v", elems, err)
	}
	elems, err = nft.ListElements(ctx, "set", "cluster-ips")
	if err != nil || len(elems) != 5 {
		t.Errorf("ListElements(cluster-ips) = %d elements, %v", len(elems), err)
	}
	elems, err = nft.ListElements(ctx, "set", "hairpin-connections")
	if err != nil || len(elems) != 1 || strings.Join(elems[0].Key, " ") != "10.180.0.3 10.180.0.3 tcp 80" {
		t.Errorf("ListElements(hairpin-connections) = %+v, %v", elems, err)
	}

	rules, err := nft.ListRules(ctx, "services")
	if err != nil || len(rules) != 3 || rules[0].Comment == nil || *rules[0].Comment != "masquerade clusterIP traffic from outside cluster" ||
		rules[0].Handle == nil || rules[1].Comment != nil {
		t.Errorf("ListRules(services) = %+v, %v", rules, err)
	}
	all2, err := nft.ListRules(ctx, "")
	if err != nil || len(all2) < 20 {
		t.Errorf("ListRules(\"\") = %d rules, %v", len(all2), err)
	}
	counters, err := nft.ListCounters(ctx)
	if err != nil || len(counters) != 3 || counters[0].Packets == nil {
		t.Errorf("ListCounters = %+v, %v", counters, err)
	}
	// knftables' delete-by-handle and add-at-index: move the vmap rule out
	// and back to where it was (after the rule at index 0).
	tx := nft.NewTransaction()
	tx.Delete(&knftables.Rule{Chain: "services", Handle: rules[1].Handle})
	tx.Add(&knftables.Rule{Chain: "services", Index: knftables.PtrTo(0), Rule: knftables.Concat(
		"ip", "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", "service-ips")})
	if err := nft.Run(ctx, tx); err != nil {
		t.Errorf("delete rule by handle, add at index: %v\n%s", err, tx)
	}
	if again, err := nft.ListRules(ctx, "services"); err != nil || len(again) != 3 || *again[1].Handle == *rules[1].Handle {
		t.Errorf("after replacing a rule: %+v, %v", again, err)
	}
}

// checkErrors checks knftables' error classification and teardown.
func checkErrors(t *testing.T, nft knftables.Interface) {
	t.Helper()
	tx := nft.NewTransaction()
	tx.Create(&knftables.Table{})
	if err := nft.Check(ctx, tx); !knftables.IsAlreadyExists(err) {
		t.Errorf("Check(create existing table) = %v, want already-exists", err)
	}
	tx = nft.NewTransaction()
	tx.Delete(&knftables.Chain{Name: "no-such-chain"})
	if err := nft.Run(ctx, tx); !knftables.IsNotFound(err) {
		t.Errorf("Run(delete missing chain) = %v, want not-found", err)
	}
	if _, err := nft.ListElements(ctx, "map", "no-such-map"); !knftables.IsNotFound(err) {
		t.Errorf("ListElements(missing map) = %v, want not-found", err)
	}
	if _, err := nft.ListRules(ctx, "no-such-chain"); !knftables.IsNotFound(err) {
		t.Errorf("ListRules(missing chain) = %v, want not-found", err)
	}
	// A failing transaction changes nothing.
	tx = nft.NewTransaction()
	tx.Add(&knftables.Chain{Name: "half-done"})
	tx.Delete(&knftables.Chain{Name: "no-such-chain"})
	if err := nft.Run(ctx, tx); err == nil {
		t.Errorf("failing transaction succeeded")
	}
	if chains, _ := nft.List(ctx, "chains"); contains(chains, "half-done") {
		t.Errorf("a failed transaction left chain half-done behind")
	}
	// --check does not change anything either.
	tx = nft.NewTransaction()
	tx.Add(&knftables.Chain{Name: "checked-only"})
	if err := nft.Check(ctx, tx); err != nil {
		t.Errorf("Check: %v", err)
	}
	if chains, _ := nft.List(ctx, "chains"); contains(chains, "checked-only") {
		t.Errorf("Check created chain checked-only")
	}
	// kube-proxy's cleanup.
	tx = nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		t.Errorf("delete table: %v", err)
	}
	if _, err := nft.List(ctx, "chains"); !knftables.IsNotFound(err) {
		t.Errorf("List after delete table = %v, want not-found", err)
	}
	tx = nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); !knftables.IsNotFound(err) {
		t.Errorf("delete missing table = %v, want not-found", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// listeners accept connections and record which address served them.
type listeners struct{ served chan string }

func startListeners(t *testing.T, addrs ...string) *listeners {
	l := &listeners{served: make(chan string, 100)}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("listen %s: %v", a, err)
		}
		t.Cleanup(func() { ln.Close() })
		go func(a string) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, a)
				c.Close()
			}
		}(a)
	}
	return l
}

// expectConnect connects to a service address several times and requires
// every connection to reach one of the expected endpoints.
func expectConnect(t *testing.T, _ *listeners, addr string, endpoints ...string) {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Errorf("connect %s: %v", addr, err)
			return
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || !contains(endpoints, string(b)) {
			t.Errorf("connect %s: reached %q (%v), want one of %v", addr, b, err, endpoints)
			return
		}
		seen[string(b)] = true
	}
	t.Logf("%s -> %v", addr, seen)
}

// expectRefused requires a connection to a listening local address to fail:
// only kube-proxy's reject rules stand in the way.
func expectRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Errorf("connect %s: succeeded, want it rejected", addr)
		return
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Logf("connect %s: %v (rejected, but not with a port-unreachable seen by the socket)", addr, err)
	}
}
