package main

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

// flannelTransaction builds, with knftables' own types, the transactions that
// flanneld's nftables traffic manager (flannel v0.28,
// pkg/trafficmngr/nftables) sends for IPv4 when the k3s-like node starts it
// with --ip-masq: its table, the fully-random masquerade probe, the forward
// accept rules and the masquerade rules for the node's subnet.
func flannelTransaction(nft knftables.Interface, clusterCIDR, podCIDR string) *knftables.Transaction {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("rules for flannel-ipv4")})
	tx.Add(&knftables.Chain{
		Name:     "masqueradeTest",
		Comment:  knftables.PtrTo("chain to test if masquerade random fully is supported"),
		Type:     knftables.PtrTo(knftables.NATType),
		Hook:     knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority),
	})
	tx.Flush(&knftables.Chain{Name: "masqueradeTest"})
	tx.Add(&knftables.Rule{Chain: "masqueradeTest", Rule: knftables.Concat("ip saddr", "!=", "127.0.0.1", "masquerade fully-random")})
	tx.Add(&knftables.Chain{
		Name:     "forward",
		Comment:  knftables.PtrTo("chain to accept flannel traffic"),
		Type:     knftables.PtrTo(knftables.FilterType),
		Hook:     knftables.PtrTo(knftables.ForwardHook),
		Priority: knftables.PtrTo(knftables.FilterPriority),
	})
	tx.Flush(&knftables.Chain{Name: "forward"})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: knftables.Concat("ip saddr", clusterCIDR, "accept")})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: knftables.Concat("ip daddr", clusterCIDR, "accept")})
	tx.Add(&knftables.Chain{
		Name:     "postrtg",
		Comment:  knftables.PtrTo("chain to manage traffic masquerading by flannel"),
		Type:     knftables.PtrTo(knftables.NATType),
		Hook:     knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority),
	})
	tx.Flush(&knftables.Chain{Name: "postrtg"})
	family := knftables.IPv4Family
	for _, rule := range [][]any{
		{"meta mark", "0x4000", "return"},
		{family, "saddr", podCIDR, family, "daddr", clusterCIDR, "return"},
		{family, "saddr", clusterCIDR, family, "daddr", podCIDR, "return"},
		{family, "saddr", "!=", podCIDR, family, "daddr", clusterCIDR, "return"},
		{family, "saddr", clusterCIDR, family, "daddr", "!=", "224.0.0.0/4", "masquerade fully-random"},
		{family, "saddr", "!=", clusterCIDR, family, "daddr", clusterCIDR, "masquerade fully-random"},
	} {
		tx.Add(&knftables.Rule{Chain: "postrtg", Rule: knftables.Concat(rule...)})
	}
	return tx
}

// TestWriteFlannelTransaction writes flanneld's transaction as the text
// knftables feeds to `nft -f -` to the file K4S_NFT_TRANSACTION names
// (tests/integration/test_nft.py applies it with both nfts and compares the rulesets).
func TestWriteFlannelTransaction(t *testing.T) {
	tx := flannelTransaction(knftables.NewFake(knftables.IPv4Family, "flannel-ipv4"), "10.42.0.0/16", "10.42.1.0/24")
	text := tx.String()
	if !strings.Contains(text, "add table ip flannel-ipv4") || !strings.Contains(text, "masquerade fully-random") {
		t.Fatalf("not flannel's transaction:\n%s", text)
	}
	if out := os.Getenv("K4S_NFT_TRANSACTION"); out != "" {
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
