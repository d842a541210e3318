package main

// The transactions kube-proxy v1.37 (pkg/proxy/nftables/proxier.go) sends
// through knftables in IPv4 nftables mode, rebuilt here with knftables'
// object types: the same chains, sets, maps, elements and rule texts, for a
// few representative services. netns_test.go runs them against this nft and
// against the C nft.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"
)

const masqMark = "0x4000"

var masqueradeRule = "mark set mark or " + masqMark

type endpoint struct {
	ip   string
	port int
}

func (e endpoint) String() string { return e.ip + ":" + strconv.Itoa(e.port) }

// service is one service port as kube-proxy sees it.
type service struct {
	name      string // "ns/svc/tcp/p80" (already hashed-looking names below)
	hash      string
	clusterIP string
	port      int
	nodePort  int
	lbIPs     []string
	lbSources []string
	endpoints []endpoint
	affinity  bool
}

func (s service) svcChain() string { return "service-" + s.hash + "-" + s.name }
func (s service) extChain() string { return "external-" + s.hash + "-" + s.name }
func (s service) fwChain() string  { return "firewall-" + s.hash + "-" + s.name }
func (s service) epChain(e endpoint) string {
	return "endpoint-" + s.hash + "-" + s.name + "__" + e.ip + "/" + strconv.Itoa(e.port)
}
func (s service) affinitySet(e endpoint) string {
	return "affinity-" + s.hash + "-" + s.name + "__" + e.ip + "/" + strconv.Itoa(e.port)
}

var nftBaseChains = []struct {
	name, typ, hook, prio string
}{
	{"filter-prerouting-pre-dnat", "filter", "prerouting", "dstnat-10"},
	{"filter-output-pre-dnat", "filter", "output", "dstnat-10"},
	{"filter-input", "filter", "input", "filter"},
	{"filter-forward", "filter", "forward", "filter"},
	{"filter-output", "filter", "output", "filter"},
	{"nat-prerouting", "nat", "prerouting", "dstnat"},
	{"nat-output", "nat", "output", "dstnat"},
	{"nat-postrouting", "nat", "postrouting", "srcnat"},
}

var nftJumpChains = []struct{ dst, src, extra string }{
	{"nodeport-endpoints-check", "filter-input", "ct state new"},
	{"service-endpoints-check", "filter-input", "ct state new"},
	{"service-endpoints-check", "filter-forward", "ct state new"},
	{"service-endpoints-check", "filter-output", "ct state new"},
	{"firewall-check", "filter-prerouting-pre-dnat", "ct state new"},
	{"firewall-check", "filter-output-pre-dnat", "ct state new"},
	{"services", "nat-output", ""},
	{"services", "nat-prerouting", ""},
	{"masquerading", "nat-postrouting", ""},
	{"cluster-ips-check", "filter-forward", "ct state new"},
	{"cluster-ips-check", "filter-output", "ct state new"},
}

func ensureChain(tx *knftables.Transaction, created map[string]bool, chain string) {
	if created[chain] {
		return
	}
	created[chain] = true
	tx.Add(&knftables.Chain{Name: chain})
	tx.Flush(&knftables.Chain{Name: chain})
}

// setupTransaction is proxier.setupNFTables for IPv4 with nodePortAddresses
// matching all, a 10.0.0.0/8 cluster CIDR, service CIDR 172.30.0.0/16, and
// (if rejectLocalhost) localhost NodePorts rejected for every protocol.
func setupTransaction(tx *knftables.Transaction, firstSync, rejectLocalhost bool) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("rules for kube-proxy")})
	if firstSync {
		for _, bc := range nftBaseChains {
			chain := &knftables.Chain{Name: bc.name}
			tx.Add(chain)
			tx.Delete(chain)
		}
	}
	for _, bc := range nftBaseChains {
		chain := &knftables.Chain{
			Name:     bc.name,
			Type:     knftables.PtrTo(knftables.BaseChainType(bc.typ)),
			Hook:     knftables.PtrTo(knftables.BaseChainHook(bc.hook)),
			Priority: knftables.PtrTo(knftables.BaseChainPriority(bc.prio)),
		}
		tx.Add(chain)
		tx.Flush(chain)
	}
	created := map[string]bool{}
	for _, c := range nftJumpChains {
		ensureChain(tx, created, c.dst)
		tx.Add(&knftables.Rule{Chain: c.src, Rule: knftables.Concat(c.extra, "jump", c.dst)})
	}
	for _, chain := range []string{"services", "cluster-ips-check", "masquerading"} {
		ensureChain(tx, created, chain)
	}
	tx.Add(&knftables.Set{Name: "hairpin-connections", Type: "ipv4_addr . ipv4_addr . inet_proto . inet_service",
		Comment: knftables.PtrTo("service hairpin connections")})
	tx.Add(&knftables.Rule{Chain: "masquerading", Rule: knftables.Concat(
		"mark", "and", masqMark, "!=", "0", "mark", "set", "mark", "xor", masqMark, "masquerade fully-random")})
	tx.Add(&knftables.Rule{Chain: "masquerading", Rule: knftables.Concat(
		"ct status dnat", "ip", "saddr", ".", "ip", "daddr", ".", "meta l4proto", ".", "th dport", "@", "hairpin-connections",
		"masquerade fully-random")})
	tx.Add(&knftables.Set{Name: "cluster-ips", Type: "ipv4_addr", Comment: knftables.PtrTo("Active ClusterIPs")})
	tx.Add(&knftables.Rule{Chain: "cluster-ips-check", Rule: knftables.Concat("ip", "daddr", "@", "cluster-ips", "reject"),
		Comment: knftables.PtrTo("Reject traffic to invalid ports of ClusterIPs")})
	tx.Add(&knftables.Rule{Chain: "cluster-ips-check", Rule: knftables.Concat("ip", "daddr", "{", "172.30.0.0/16", "}", "drop"),
		Comment: knftables.PtrTo("Drop traffic to unallocated ClusterIPs")})
	tx.Add(&knftables.Set{Name: "nodeport-ips", Type: "ipv4_addr", Comment: knftables.PtrTo("IPs that accept NodePort traffic")})
	tx.Delete(&knftables.Set{Name: "nodeport-ips"})
	tx.Add(&knftables.Map{Name: "no-endpoint-services", Type: "ipv4_addr . inet_proto . inet_service : verdict",
		Comment: knftables.PtrTo("vmap to drop or reject packets to services with no endpoints")})
	tx.Add(&knftables.Map{Name: "no-endpoint-nodeports", Type: "inet_proto . inet_service : verdict",
		Comment: knftables.PtrTo("vmap to drop or reject packets to service nodeports with no endpoints")})
	tx.Add(&knftables.Chain{Name: "reject-chain", Comment: knftables.PtrTo("helper for @no-endpoint-services / @no-endpoint-nodeports")})
	tx.Flush(&knftables.Chain{Name: "reject-chain"})
	tx.Add(&knftables.Rule{Chain: "reject-chain", Rule: "reject"})
	tx.Add(&knftables.Rule{Chain: "service-endpoints-check", Rule: knftables.Concat(
		"ip", "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", "no-endpoint-services")})
	tx.Add(&knftables.Rule{Chain: "nodeport-endpoints-check", Rule: knftables.Concat(
		"ip daddr != 127.0.0.0/8", "meta l4proto . th dport", "vmap", "@", "no-endpoint-nodeports")})

	protocols := []string{"tcp", "udp", "sctp"}
	tx.Add(&knftables.Map{Name: "localhost-nodeport-reject-ports", Type: "inet_proto . inet_service : verdict",
		Comment: knftables.PtrTo("localhost NodePorts rejected by kube-proxy")})
	if rejectLocalhost {
		for _, p := range protocols {
			counter := "localhost-nodeport-rejected-" + p
			tx.Add(&knftables.Counter{Name: counter})
			chain := "localhost-nodeport-reject-" + p
			ensureChain(tx, created, chain)
			tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat("counter name", fmt.Sprintf("%q", counter), "reject")})
		}
		tx.Add(&knftables.Rule{Chain: "nodeport-endpoints-check", Rule: knftables.Concat(
			"ip daddr 127.0.0.0/8", "meta l4proto . th dport", "vmap", "@", "localhost-nodeport-reject-ports")})
	} else {
		tx.Delete(&knftables.Map{Name: "localhost-nodeport-reject-ports"})
		for _, p := range protocols {
			chain := &knftables.Chain{Name: "localhost-nodeport-reject-" + p}
			tx.Add(chain)
			tx.Delete(chain)
			counter := &knftables.Counter{Name: "localhost-nodeport-rejected-" + p}
			tx.Add(counter)
			tx.Delete(counter)
		}
	}
	tx.Add(&knftables.Map{Name: "firewall-ips", Type: "ipv4_addr . inet_proto . inet_service : verdict",
		Comment: knftables.PtrTo("destinations that are subject to LoadBalancerSourceRanges")})
	ensureChain(tx, created, "firewall-check")
	tx.Add(&knftables.Rule{Chain: "firewall-check", Rule: knftables.Concat(
		"ip", "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", "firewall-ips")})
	tx.Add(&knftables.Map{Name: "service-ips", Type: "ipv4_addr . inet_proto . inet_service : verdict",
		Comment: knftables.PtrTo("ClusterIP, ExternalIP and LoadBalancer IP traffic")})
	tx.Add(&knftables.Map{Name: "service-nodeports", Type: "inet_proto . inet_service : verdict",
		Comment: knftables.PtrTo("NodePort traffic")})
	tx.Add(&knftables.Rule{Chain: "services", Rule: knftables.Concat(
		"ip", "daddr", "@", "cluster-ips", "ip", "saddr", "!=", "10.0.0.0/8", masqueradeRule),
		Comment: knftables.PtrTo("masquerade clusterIP traffic from outside cluster")})
	tx.Add(&knftables.Rule{Chain: "services", Rule: knftables.Concat(
		"ip", "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", "service-ips")})
	tx.Add(&knftables.Rule{Chain: "services", Rule: knftables.Concat(
		"fib daddr type local", "ip daddr != 127.0.0.0/8", "meta l4proto . th dport", "vmap", "@", "service-nodeports")})
}

// elementStore is kube-proxy's nftElementStorage: it reads a set or map back
// with ListElements and only writes the differences.
type elementStore struct {
	kind, name string
	elements   map[string]string
	leftover   map[string]bool
}

func joinKey(k []string) string { return fmt.Sprint(k) }

func (s *elementStore) readOrReset(nft knftables.Interface, tx *knftables.Transaction) error {
	s.elements, s.leftover = map[string]string{}, map[string]bool{}
	elems, err := nft.ListElements(ctx, s.kind, s.name)
	if err != nil && !knftables.IsNotFound(err) {
		return err
	}
	for _, e := range elems {
		k := joinKey(e.Key)
		s.elements[k] = joinKey(e.Value)
		s.leftover[k] = true
	}
	return nil
}

func (s *elementStore) ensure(tx *knftables.Transaction, e *knftables.Element) {
	k, v := joinKey(e.Key), joinKey(e.Value)
	if old, ok := s.elements[k]; ok {
		if old != v {
			tx.Delete(e)
			tx.Add(e)
		}
		delete(s.leftover, k)
		return
	}
	tx.Add(e)
	s.elements[k] = v
}

func (s *elementStore) cleanup(tx *knftables.Transaction, keys map[string][]string) {
	for k := range s.leftover {
		e := &knftables.Element{Key: keys[k]}
		if s.kind == "set" {
			e.Set = s.name
		} else {
			e.Map = s.name
		}
		tx.Delete(e)
	}
}

// syncer is the part of kube-proxy's syncProxyRules this test needs.
type syncer struct {
	nft        knftables.Interface
	stores     []*elementStore
	keys       map[string][]string // joined key -> key, for cleanup
	prevChains map[string]bool
}

func newSyncer(nft knftables.Interface) *syncer {
	s := &syncer{nft: nft, keys: map[string][]string{}}
	for _, c := range []struct{ kind, name string }{
		{"set", "cluster-ips"}, {"map", "service-ips"}, {"map", "firewall-ips"}, {"map", "no-endpoint-services"},
		{"map", "no-endpoint-nodeports"}, {"map", "service-nodeports"}, {"set", "hairpin-connections"},
	} {
		s.stores = append(s.stores, &elementStore{kind: c.kind, name: c.name})
	}
	return s
}

func (s *syncer) store(name string) *elementStore {
	for _, st := range s.stores {
		if st.name == name {
			return st
		}
	}
	panic(name)
}

func (s *syncer) elem(tx *knftables.Transaction, container string, key, value []string, comment *string) {
	st := s.store(container)
	e := &knftables.Element{Key: key, Value: value, Comment: comment}
	if st.kind == "set" {
		e.Set = container
	} else {
		e.Map = container
	}
	s.keys[joinKey(key)] = key
	st.ensure(tx, e)
}

// sync builds and runs one sync transaction for services, like
// syncProxyRules: full syncs run setupTransaction first; service chains are
// recreated (flushed and refilled); stale chains are flushed now and deleted
// by the next sync.
func (s *syncer) sync(services []service, full, firstSync, rejectLocalhost bool) (*knftables.Transaction, error) {
	// Delete chains that went stale in the previous sync.
	existing, err := s.nft.List(ctx, "chains")
	if err != nil && !knftables.IsNotFound(err) {
		return nil, err
	}
	tx := s.nft.NewTransaction()
	if full {
		setupTransaction(tx, firstSync, rejectLocalhost)
	}
	for _, st := range s.stores {
		if err := st.readOrReset(s.nft, tx); err != nil {
			return nil, fmt.Errorf("ListElements %s: %w", st.name, err)
		}
	}
	active := map[string]bool{}
	for _, svc := range services {
		proto, port := "tcp", strconv.Itoa(svc.port)
		comment := knftables.PtrTo(svc.name)
		s.elem(tx, "cluster-ips", []string{svc.clusterIP}, nil, nil)
		if len(svc.endpoints) == 0 {
			s.elem(tx, "no-endpoint-services", []string{svc.clusterIP, proto, port}, []string{"goto reject-chain"}, comment)
			continue
		}
		// Chains first (proxier.go ensures endpoint, policy, external and
		// firewall chains before writing rules that jump to them).
		if svc.affinity {
			for _, ep := range svc.endpoints {
				ensureChain(tx, active, svc.epChain(ep))
			}
		}
		ensureChain(tx, active, svc.svcChain())
		if svc.nodePort != 0 || len(svc.lbIPs) > 0 {
			ensureChain(tx, active, svc.extChain())
		}
		if len(svc.lbSources) > 0 {
			ensureChain(tx, active, svc.fwChain())
		}
		s.elem(tx, "service-ips", []string{svc.clusterIP, proto, port}, []string{"goto " + svc.svcChain()}, nil)
		for _, ep := range svc.endpoints {
			if ep.ip == "10.180.0.1" || ep.ip == "10.180.0.3" {
				s.elem(tx, "hairpin-connections", []string{ep.ip, ep.ip, proto, strconv.Itoa(ep.port)}, nil, nil)
			}
		}
		if svc.nodePort != 0 || len(svc.lbIPs) > 0 {
			if svc.nodePort != 0 {
				s.elem(tx, "service-nodeports", []string{proto, strconv.Itoa(svc.nodePort)}, []string{"goto " + svc.extChain()}, nil)
			}
			for _, lb := range svc.lbIPs {
				s.elem(tx, "service-ips", []string{lb, proto, port}, []string{"goto " + svc.extChain()}, nil)
			}
			tx.Add(&knftables.Rule{Chain: svc.extChain(), Rule: knftables.Concat("ip saddr 10.0.0.0/8", "goto", svc.svcChain()),
				Comment: knftables.PtrTo("short-circuit pod traffic")})
			tx.Add(&knftables.Rule{Chain: svc.extChain(), Rule: knftables.Concat("fib", "saddr", "type", "local", masqueradeRule),
				Comment: knftables.PtrTo("masquerade local traffic")})
			tx.Add(&knftables.Rule{Chain: svc.extChain(), Rule: knftables.Concat("fib", "saddr", "type", "local", "goto", svc.svcChain()),
				Comment: knftables.PtrTo("short-circuit local traffic")})
		}
		if len(svc.lbSources) > 0 {
			for _, lb := range svc.lbIPs {
				s.elem(tx, "firewall-ips", []string{lb, proto, port}, []string{"goto " + svc.fwChain()}, nil)
			}
			var sources []string
			for i, src := range svc.lbSources {
				if i > 0 {
					sources = append(sources, ",")
				}
				sources = append(sources, src)
			}
			tx.Add(&knftables.Rule{Chain: svc.fwChain(), Rule: knftables.Concat("ip", "saddr", "!=", "{", sources, "}", "drop")})
		}
		if !svc.affinity {
			if len(svc.endpoints) == 1 {
				tx.Add(&knftables.Rule{Chain: svc.svcChain(), Rule: knftables.Concat("meta l4proto", proto, "dnat to", svc.endpoints[0].String())})
				continue
			}
			var elements []string
			for i, ep := range svc.endpoints {
				elements = append(elements, strconv.Itoa(i), ":", ep.ip, ".", strconv.Itoa(ep.port))
				if i != len(svc.endpoints)-1 {
					elements = append(elements, ",")
				}
			}
			tx.Add(&knftables.Rule{Chain: svc.svcChain(), Rule: knftables.Concat(
				"meta l4proto", proto, "dnat", "ip", "addr . port to", "numgen random mod", len(svc.endpoints), "map", "{", elements, "}")})
			continue
		}
		var elements []string
		for i, ep := range svc.endpoints {
			tx.Add(&knftables.Set{Name: svc.affinitySet(ep), Type: "ipv4_addr",
				Flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag}, Timeout: knftables.PtrTo(10800 * time.Second)})
			tx.Add(&knftables.Rule{Chain: svc.svcChain(), Rule: knftables.Concat("ip", "saddr", "@", svc.affinitySet(ep), "goto", svc.epChain(ep))})
			elements = append(elements, strconv.Itoa(i), ":", "goto", svc.epChain(ep))
			if i != len(svc.endpoints)-1 {
				elements = append(elements, ",")
			}
		}
		tx.Add(&knftables.Rule{Chain: svc.svcChain(), Rule: knftables.Concat("numgen random mod", len(svc.endpoints), "vmap", "{", elements, "}")})
		for _, ep := range svc.endpoints {
			tx.Add(&knftables.Rule{Chain: svc.epChain(ep), Rule: knftables.Concat("update", "@", svc.affinitySet(ep), "{", "ip", "saddr", "}")})
			tx.Add(&knftables.Rule{Chain: svc.epChain(ep), Rule: knftables.Concat("meta l4proto", proto, "dnat to", ep.String())})
		}
	}
	// Stale service chains: flushed now, deleted by the next sync (as
	// kube-proxy does, for kernels that notice unreferenced chains late).
	for _, chain := range existing {
		if s.prevChains[chain] && !active[chain] {
			tx.Delete(&knftables.Chain{Name: chain})
		} else if !active[chain] && isServiceChain(chain) {
			tx.Flush(&knftables.Chain{Name: chain})
			active[chain+"#stale"] = true
		}
	}
	s.prevChains = map[string]bool{}
	for c := range active {
		if len(c) > 6 && c[len(c)-6:] == "#stale" {
			s.prevChains[c[:len(c)-6]] = true
		}
	}
	for _, st := range s.stores {
		st.cleanup(tx, s.keys)
	}
	return tx, s.nft.Run(ctx, tx)
}

func isServiceChain(name string) bool {
	for _, c := range name {
		if c == '/' {
			return true
		}
	}
	return false
}

// Three generations of services: the first sync, a partial sync that
// changes endpoints and removes a service, and a later state.
var (
	svc1 = service{name: "ns1/svc1/tcp/p80", hash: "ULMVA6XW", clusterIP: "172.30.0.41", port: 80,
		endpoints: []endpoint{{"10.180.0.10", 8080}}}
	svc2 = service{name: "ns2/svc2/tcp/p80", hash: "42NFTM6N", clusterIP: "172.30.0.42", port: 80, nodePort: 3001,
		lbIPs: []string{"1.2.3.4"}, lbSources: []string{"203.0.113.0/25", "198.51.100.0/24"},
		endpoints: []endpoint{{"10.180.0.10", 8081}, {"10.180.0.11", 8081}}}
	svc3 = service{name: "ns3/svc3/tcp/p80", hash: "4AT6LBPK", clusterIP: "172.30.0.43", port: 80, nodePort: 3003,
		endpoints: []endpoint{{"10.180.0.3", 80}}}
	svc5 = service{name: "ns5/svc5/tcp/p80", hash: "HVFWP5L3", clusterIP: "172.30.0.45", port: 80, affinity: true,
		endpoints: []endpoint{{"10.180.0.3", 80}, {"10.180.0.4", 80}}}
	svc6 = service{name: "ns6/svc6/tcp/p80", hash: "XJWQ2MZA", clusterIP: "172.30.0.46", port: 80}
	// svc1 after its pod moved to another port; svc7 is new.
	svc1b = service{name: svc1.name, hash: svc1.hash, clusterIP: svc1.clusterIP, port: 80,
		endpoints: []endpoint{{"10.180.0.10", 8082}}}
	svc7 = service{name: "ns7/svc7/tcp/p443", hash: "ABCDEFGH", clusterIP: "172.30.0.47", port: 443,
		endpoints: []endpoint{{"10.180.0.7", 443}}}
)

// TestWriteKubeProxyTransaction renders the first full sync of the services
// above as the text knftables feeds to `nft -f -`, and writes it to the file
// K4S_NFT_TRANSACTION names (tests/integration/test_nft.py applies it with both nfts).
func TestWriteKubeProxyTransaction(t *testing.T) {
	s := newSyncer(knftables.NewFake(knftables.IPv4Family, "kube-proxy"))
	tx, err := s.sync([]service{svc1, svc2, svc3, svc5, svc6}, true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	text := tx.String()
	if !strings.Contains(text, "add table ip kube-proxy") || !strings.Contains(text, "numgen random mod") {
		t.Fatalf("not a kube-proxy first sync:\n%s", text)
	}
	if out := os.Getenv("K4S_NFT_TRANSACTION"); out != "" {
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
