package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func TestLex(t *testing.T) {
	toks, err := lex("add rule ip kube-proxy svc/a/tcp/p80 ip daddr @x comment \"a \\\"b\\\"\" # c\n{0: goto x,1:drop};")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range toks {
		got = append(got, tk.text)
	}
	want := []string{"add", "rule", "ip", "kube-proxy", "svc/a/tcp/p80", "ip", "daddr", "@x", "comment", `a "b"`, "\n",
		"{", "0", ":", "goto", "x", ",", "1:drop", "}", ";", ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lex:\n got %q\nwant %q", got, want)
	}
	if _, err := lex(`comment "open`); err == nil {
		t.Error("unterminated string: no error")
	}
}

// knftablesTransaction is a transaction as knftables writes it for kube-proxy.
const knftablesTransaction = `add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy filter-prerouting-pre-dnat
delete chain ip kube-proxy filter-prerouting-pre-dnat
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
flush chain ip kube-proxy nat-output
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add set ip kube-proxy affinity-X-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add rule ip kube-proxy nat-output jump services
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
delete element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 }
add counter ip kube-proxy localhost-nodeport-rejected-tcp
delete rule ip kube-proxy nat-output handle 7
`

func TestParseInput(t *testing.T) {
	cmds, err := parseInput(knftablesTransaction)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 15 {
		t.Fatalf("got %d commands, want 15", len(cmds))
	}
	c := cmds[0]
	if c.verb != "add" || c.object != "table" || c.family != "ip" || c.table != "kube-proxy" || *c.comment != "rules for kube-proxy" {
		t.Errorf("table: %+v", c)
	}
	if c := cmds[3]; c.chainSpec == nil || c.chainSpec.typ != "nat" || c.chainSpec.hook != "output" || c.chainSpec.priority != -100 {
		t.Errorf("base chain: %+v", c.chainSpec)
	}
	if c := cmds[5]; c.chainSpec != nil || c.comment == nil {
		t.Errorf("regular chain with comment: %+v", c)
	}
	if c := cmds[7]; c.object != "map" || c.setSpec.key.String() != "ipv4_addr . inet_proto . inet_service" || !c.setSpec.data.isVerdict() {
		t.Errorf("map: %+v", c.setSpec)
	}
	if s := cmds[8].setSpec; !reflect.DeepEqual(s.flags, []string{"dynamic", "timeout"}) || s.timeout.Seconds() != 10800 {
		t.Errorf("affinity set: %+v", s)
	}
	if c := cmds[10]; len(c.elements) != 1 || strings.Join(c.elements[0].key, " ") != "172.30.0.41 . tcp . 80" ||
		strings.Join(c.elements[0].value, " ") != "goto service-ULMVA6XW-ns1/svc1/tcp/p80" {
		t.Errorf("element: %+v", c.elements)
	}
	if e := cmds[11].elements[0]; e.comment == nil || *e.comment != "ns2/svc2:p80" || strings.Join(e.value, " ") != "drop" {
		t.Errorf("element with comment: %+v", e)
	}
	if c := cmds[14]; c.handle == nil || *c.handle != 7 {
		t.Errorf("delete rule by handle: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{
		"frobnicate table ip x",
		"add table ip",
		"add chain ip t c { type filter hook input priority bogus ; }",
		"add set ip t s { typeof ip saddr ; }",
		"add set ip t s { type ipv4_addr ; policy memory ; }",
		"add map ip t m { type ipv4_addr ; }",
		"add table netdev x",
		"delete rule ip t c",
		"add element ip t s { }",
		"reset counter ip t c",
	} {
		if _, err := parseInput(src); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}

func TestParsePriority(t *testing.T) {
	for in, want := range map[string]int32{"-110": -110, "0": 0, "dstnat": -100, "dstnat-10": -110, "srcnat": 100, "filter+5": 5} {
		if got, err := parsePriority(in); err != nil || got != want {
			t.Errorf("parsePriority(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// fakeEnv records anonymous sets instead of adding them to a batch.
type fakeEnv struct {
	sets  []*nftables.Set
	elems [][]nftables.SetElement
}

func (f *fakeEnv) setID(name string) uint32 {
	if name == "new-set" {
		return 42
	}
	return 0
}

func (f *fakeEnv) addAnonSet(s *nftables.Set, elems []nftables.SetElement) error {
	s.ID = uint32(100 + len(f.sets))
	s.Name = "__set%d"
	if s.IsMap {
		s.Name = "__map%d"
	}
	f.sets = append(f.sets, s)
	f.elems = append(f.elems, elems)
	return nil
}

func compile(t *testing.T, family, rule string) (*compiledRule, *fakeEnv) {
	t.Helper()
	toks, err := lex(rule)
	if err != nil {
		t.Fatal(err)
	}
	env := &fakeEnv{}
	r, err := compileRule(family, toks[:len(toks)-1], env)
	if err != nil {
		t.Fatalf("%q: %v", rule, err)
	}
	return r, env
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

var zero4 = []byte{0, 0, 0, 0}

// TestCompileRule checks the bytecode against what nft 1.0.6 generates for
// the same rules (nft --debug=netlink).
func TestCompileRule(t *testing.T) {
	payload := func(base expr.PayloadBase, off, n, reg uint32) *expr.Payload {
		return &expr.Payload{OperationType: expr.PayloadLoad, Base: base, Offset: off, Len: n, DestRegister: reg}
	}
	nh, th := expr.PayloadBaseNetworkHeader, expr.PayloadBaseTransportHeader
	for _, tc := range []struct {
		rule string
		want []expr.Any
	}{
		{"ct state new jump cluster-ips-check", []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(8), Xor: zero4},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: zero4},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: "cluster-ips-check"},
		}},
		{"ip daddr @cluster-ips reject", []expr.Any{
			payload(nh, 16, 4, 1),
			&expr.Lookup{SourceRegister: 1, SetName: "cluster-ips"},
			&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3},
		}},
		{"ip daddr { 172.30.0.0/16 } drop", []expr.Any{
			payload(nh, 16, 2, 1),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{172, 30}},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}},
		{"mark and 0x4000 != 0 mark set mark xor 0x4000 masquerade fully-random", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0x4000), Xor: zero4},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: zero4},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xffffffff), Xor: le32(0x4000)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
			&expr.Masq{FullyRandom: true},
		}},
		{"ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random", []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0x20), Xor: zero4},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: zero4},
			payload(nh, 12, 4, 1), payload(nh, 16, 4, 9),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 10},
			payload(th, 2, 2, 11),
			&expr.Lookup{SourceRegister: 1, SetName: "hairpin-connections"},
			&expr.Masq{FullyRandom: true},
		}},
		{"ip daddr @cluster-ips ip saddr != 10.0.0.0/8 mark set mark or 0x4000", []expr.Any{
			payload(nh, 16, 4, 1),
			&expr.Lookup{SourceRegister: 1, SetName: "cluster-ips"},
			payload(nh, 12, 1, 1),
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{10}},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xffffbfff), Xor: le32(0x4000)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		}},
		{"fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports", []expr.Any{
			&expr.Fib{Register: 1, ResultADDRTYPE: true, FlagDADDR: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(2)},
			payload(nh, 16, 1, 1),
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{127}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			payload(th, 2, 2, 9),
			&expr.Lookup{SourceRegister: 1, SetName: "service-nodeports", IsDestRegSet: true},
		}},
		{"meta l4proto tcp dnat to 10.180.0.1:80", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
			&expr.Immediate{Register: 1, Data: []byte{10, 180, 0, 1}},
			&expr.Immediate{Register: 2, Data: []byte{0, 80}},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}},
		{"ip saddr @new-set goto endpoint-X", []expr.Any{
			payload(nh, 12, 4, 1),
			&expr.Lookup{SourceRegister: 1, SetName: "new-set", SetID: 42},
			&expr.Verdict{Kind: expr.VerdictGoto, Chain: "endpoint-X"},
		}},
		{"update @new-set { ip saddr }", []expr.Any{
			payload(nh, 12, 4, 1),
			&expr.Dynset{SrcRegKey: 1, SetName: "new-set", SetID: 42, Operation: unix.NFT_DYNSET_OP_UPDATE},
		}},
		{`iifname != "cni0" counter name "cnt-tcp" reject`, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte("cni0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
			&expr.Objref{Type: 1, Name: "cnt-tcp"},
			&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3},
		}},
		{"iifname veth* return", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("veth")},
			&expr.Verdict{Kind: expr.VerdictReturn},
		}},
		{"ct state established,related accept", []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(6), Xor: zero4},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: zero4},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}},
		{"meta l4proto tcp reject with tcp reset", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
			&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
		}},
		{"ip saddr 203.0.113.0/25 accept", []expr.Any{
			payload(nh, 12, 4, 1),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 255, 128}, Xor: zero4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{203, 0, 113, 0}},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}},
	} {
		got, _ := compile(t, "ip", tc.rule)
		if !reflect.DeepEqual(got.exprs, tc.want) {
			g, _ := json.Marshal(got.exprs)
			w, _ := json.Marshal(tc.want)
			t.Errorf("%q:\n got %s\nwant %s", tc.rule, g, w)
		}
	}
}

func TestCompileAnonymousMaps(t *testing.T) {
	r, env := compile(t, "ip", "meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.180.0.4 . 80 , 1 : 10.180.0.5 . 80 } comment \"x\"")
	if r.comment == nil || *r.comment != "x" {
		t.Errorf("comment = %v", r.comment)
	}
	if len(env.sets) != 1 || !env.sets[0].IsMap || !env.sets[0].Anonymous || env.sets[0].KeyType.Bytes != 4 || env.sets[0].DataType.Bytes != 8 {
		t.Fatalf("anonymous map: %+v", env.sets)
	}
	wantElems := []nftables.SetElement{
		{Key: le32(0), Val: []byte{10, 180, 0, 4, 0, 80, 0, 0}},
		{Key: le32(1), Val: []byte{10, 180, 0, 5, 0, 80, 0, 0}},
	}
	if !reflect.DeepEqual(env.elems[0], wantElems) {
		t.Errorf("elements = %+v", env.elems[0])
	}
	n := r.exprs[len(r.exprs)-1].(*expr.NAT)
	if n.RegAddrMin != 1 || n.RegProtoMin != 9 || n.Specified {
		t.Errorf("nat = %+v", n)
	}
	lookup := r.exprs[len(r.exprs)-2].(*expr.Lookup)
	if !lookup.IsDestRegSet || lookup.DestRegister != 1 || lookup.SetID != 100 {
		t.Errorf("lookup = %+v", lookup)
	}

	_, env = compile(t, "ip", "numgen random mod 2 vmap { 0 : goto a , 1 : goto b }")
	if got := env.elems[0][1].VerdictData; got == nil || got.Kind != expr.VerdictGoto || got.Chain != "b" {
		t.Errorf("vmap element = %+v", env.elems[0])
	}

	// A multi-element address set becomes an interval set, as nft makes it.
	_, env = compile(t, "ip", "ip saddr != { 203.0.113.0/25 , 1.2.3.4 } drop")
	s := env.sets[0]
	if !s.Interval || !s.Constant || s.IsMap {
		t.Errorf("anonymous set flags: %+v", s)
	}
	var keys []string
	for _, e := range env.elems[0] {
		k := netipString(e.Key)
		if e.IntervalEnd {
			k += "]"
		}
		keys = append(keys, k)
	}
	if got, want := strings.Join(keys, " "), "0.0.0.0] 1.2.3.4 1.2.3.5] 203.0.113.0 203.0.113.128]"; got != want {
		t.Errorf("interval elements = %s, want %s", got, want)
	}
}

func netipString(b []byte) string { return typeIPv4Addr.format(b).(string) }

func TestCompileErrors(t *testing.T) {
	for _, rule := range []string{
		"log prefix foo",
		"ip6 saddr ::1 drop",
		"ip daddr 1.2.3.4-1.2.3.9 drop",
		"meta iif lo accept",
		"jump",
		"dnat to 300.1.1.1",
		"comment \"a\" drop",
		"reject with icmp type host-unreachable",
		"ip saddr . ip daddr 1.2.3.4 drop",
	} {
		toks, _ := lex(rule)
		if _, err := compileRule("ip", toks[:len(toks)-1], &fakeEnv{}); err == nil {
			t.Errorf("%q: no error", rule)
		}
	}
}

func TestBuildElements(t *testing.T) {
	key := keyType{typeIPv4Addr, typeInetProto, typeInetService}
	els, err := buildElements(key, keyType{typeVerdict}, false, false, []elementSpec{
		{key: strings.Fields("1.2.3.4 . udp . 53"), value: []string{"jump", "x"}, comment: ptrTo("c")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := nftables.SetElement{Key: []byte{1, 2, 3, 4, 17, 0, 0, 0, 0, 53, 0, 0},
		VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "x"}, Comment: "c"}
	if !reflect.DeepEqual(els[0], want) {
		t.Errorf("got %+v", els[0])
	}
	for _, bad := range [][]string{{"1.2.3.4", ".", "udp"}, {"1.2.3.4", ".", "bogus", ".", "53"}, {"1.2.3.4", ".", "udp", ".", "70000"}} {
		if _, err := buildElements(key, nil, false, false, []elementSpec{{key: bad}}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// Named interval set: prefixes become [start, end) pairs, merged when adjacent.
	els, err = buildElements(keyType{typeIPv4Addr}, nil, true, false, []elementSpec{
		{key: []string{"10.0.0.0/25"}}, {key: []string{"10.0.0.128/25"}}, {key: []string{"192.168.1.1"}},
	})
	if err != nil || len(els) != 4 || !bytes.Equal(els[1].Key, []byte{10, 0, 1, 0}) || !els[1].IntervalEnd {
		t.Errorf("interval: %+v %v", els, err)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestElementsJSON(t *testing.T) {
	code := int32(expr.VerdictGoto)
	drop := int32(expr.VerdictDrop)
	s := kernelSet{flags: unix.NFT_SET_MAP, key: keyType{typeIPv4Addr, typeInetProto, typeInetService}, data: keyType{typeVerdict}}
	got, _ := json.Marshal(elementsJSON(s, []kernelElement{
		{key: []byte{172, 30, 0, 41, 6, 0, 0, 0, 0, 80, 0, 0}, verdict: &code, chain: "svc"},
		{key: []byte{1, 2, 3, 4, 17, 0, 0, 0, 0, 53, 0, 0}, verdict: &drop, comment: "ns/svc:dns"},
	}))
	want := `[[{"elem":{"val":{"concat":["1.2.3.4","udp",53]},"comment":"ns/svc:dns"}},{"drop":null}],` +
		`[{"concat":["172.30.0.41","tcp",80]},{"goto":{"target":"svc"}}]]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	iv := kernelSet{flags: unix.NFT_SET_INTERVAL, key: keyType{typeIPv4Addr}}
	got, _ = json.Marshal(elementsJSON(iv, []kernelElement{
		{key: []byte{10, 0, 1, 0}, flags: unix.NFT_SET_ELEM_INTERVAL_END},
		{key: []byte{10, 0, 0, 0}},
		{key: []byte{5, 5, 5, 5}},
		{key: []byte{5, 5, 5, 6}, flags: unix.NFT_SET_ELEM_INTERVAL_END},
		{key: []byte{0, 0, 0, 0}, flags: unix.NFT_SET_ELEM_INTERVAL_END},
	}))
	if want := `["5.5.5.5",{"prefix":{"addr":"10.0.0.0","len":24}}]`; string(got) != want {
		t.Errorf("interval: got %s, want %s", got, want)
	}
}

func TestParseArgs(t *testing.T) {
	o, words, err := parseArgs([]string{"--json", "--terse", "list", "table", "ip", "kube-proxy"})
	if err != nil || !o.json || !o.terse || strings.Join(words, " ") != "list table ip kube-proxy" {
		t.Errorf("got %+v %q %v", o, words, err)
	}
	o, words, err = parseArgs([]string{"--check", "-f", "-"})
	if err != nil || !o.check || !o.hasFile || o.file != "-" || len(words) != 0 {
		t.Errorf("got %+v %q %v", o, words, err)
	}
	_, words, _ = parseArgs([]string{"add", "chain", "ip", "t", "c", "{", "priority", "-100", ";", "}"})
	if len(words) != 10 {
		t.Errorf("flags parsed after the first command word: %q", words)
	}
}

func TestStrerror(t *testing.T) {
	if got := strerror(unix.ENOENT); got != "No such file or directory" {
		t.Errorf("ENOENT: %q", got)
	}
	if got := strerror(unix.EEXIST); got != "File exists" {
		t.Errorf("EEXIST: %q", got)
	}
}
