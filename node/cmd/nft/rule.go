package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ruleEnv is what compiling a rule needs from the surrounding transaction:
// the batch ids of sets created earlier in it (so lookups can refer to them
// before they are committed) and a way to add the anonymous sets and maps a
// rule uses (`{ 0 : goto a, 1 : goto b }`) to the batch before the rule.
type ruleEnv interface {
	setID(name string) uint32
	addAnonSet(s *nftables.Set, elems []nftables.SetElement) error
}

// compiledRule is a rule's expressions and its comment.
type compiledRule struct {
	exprs   []expr.Any
	comment *string
}

// ruleCompiler translates one rule's statements into netlink expressions,
// emitting the same bytecode as nft so that `nft list ruleset` (C) prints it
// back as the same text.
type ruleCompiler struct {
	toks   []token
	pos    int
	family string
	env    ruleEnv
	out    compiledRule
}

func compileRule(family string, toks []token, env ruleEnv) (*compiledRule, error) {
	c := &ruleCompiler{toks: toks, family: family, env: env}
	for !c.done() {
		if c.out.comment != nil {
			return nil, c.errorf(c.peek(), "syntax error, comment must be the last statement")
		}
		if err := c.statement(); err != nil {
			return nil, err
		}
	}
	return &c.out, nil
}

func (c *ruleCompiler) done() bool { return c.pos >= len(c.toks) }

func (c *ruleCompiler) peek() token {
	if c.done() {
		t := token{kind: tokEOF}
		if len(c.toks) > 0 {
			last := c.toks[len(c.toks)-1]
			t.line, t.col = last.line, last.col+len(last.text)
		}
		return t
	}
	return c.toks[c.pos]
}

func (c *ruleCompiler) next() token {
	t := c.peek()
	if !c.done() {
		c.pos++
	}
	return t
}

func (c *ruleCompiler) peekWord(words ...string) bool {
	t := c.peek()
	if t.kind != tokWord {
		return false
	}
	for _, w := range words {
		if t.text == w {
			return true
		}
	}
	return false
}

func (c *ruleCompiler) errorf(t token, format string, args ...any) error {
	return &parseError{tok: t, msg: fmt.Sprintf(format, args...)}
}

func (c *ruleCompiler) word(what string) (token, error) {
	t := c.next()
	if t.kind != tokWord {
		return t, c.errorf(t, "syntax error, expected %s, got %s", what, t)
	}
	return t, nil
}

func (c *ruleCompiler) emit(e ...expr.Any) { c.out.exprs = append(c.out.exprs, e...) }

// statement compiles one statement: a match, a verdict, or an action.
func (c *ruleCompiler) statement() error {
	t := c.peek()
	if t.kind != tokWord {
		return c.errorf(t, "syntax error, unexpected %s", t)
	}
	switch t.text {
	case "comment":
		c.next()
		s := c.next()
		if s.kind != tokString && s.kind != tokWord {
			return c.errorf(s, "syntax error, expected comment string")
		}
		if len(s.text) > 128 {
			return c.errorf(s, "comment too long (%d > 128 bytes)", len(s.text))
		}
		c.out.comment = &s.text
		return nil
	case "accept", "drop", "return", "continue", "jump", "goto":
		v, err := c.verdict()
		if err != nil {
			return err
		}
		c.emit(v)
		return nil
	case "counter":
		return c.counter()
	case "reject":
		return c.reject()
	case "masquerade":
		return c.masquerade()
	case "dnat", "snat":
		return c.nat()
	case "update", "add":
		if n := c.pos + 1; n < len(c.toks) && strings.HasPrefix(c.toks[n].text, "@") {
			return c.dynset()
		}
	}
	if _, ok := selectorWords[t.text]; ok {
		return c.matchOrMangle()
	}
	return c.errorf(t, "unsupported statement %q", t.text)
}

// verdict parses accept, drop, return, continue, jump CHAIN, goto CHAIN.
func (c *ruleCompiler) verdict() (*expr.Verdict, error) {
	t, err := c.word("verdict")
	if err != nil {
		return nil, err
	}
	v, err := parseVerdict(t.text, func() (string, bool) {
		n := c.next()
		return n.text, n.kind == tokWord || n.kind == tokString
	})
	if err != nil {
		return nil, c.errorf(t, "%v", err)
	}
	return v, nil
}

// parseVerdict parses a verdict whose first word is w; next supplies the chain
// name of jump and goto.
func parseVerdict(w string, next func() (string, bool)) (*expr.Verdict, error) {
	kinds := map[string]expr.VerdictKind{
		"accept": expr.VerdictAccept, "drop": expr.VerdictDrop, "return": expr.VerdictReturn,
		"continue": expr.VerdictContinue, "jump": expr.VerdictJump, "goto": expr.VerdictGoto,
	}
	kind, ok := kinds[w]
	if !ok {
		return nil, fmt.Errorf("invalid verdict %q", w)
	}
	v := &expr.Verdict{Kind: kind}
	if kind == expr.VerdictJump || kind == expr.VerdictGoto {
		chain, ok := next()
		if !ok || chain == "" {
			return nil, fmt.Errorf("%s needs a chain name", w)
		}
		v.Chain = chain
	}
	return v, nil
}

func (c *ruleCompiler) counter() error {
	c.next()
	if c.peekWord("name") {
		c.next()
		n := c.next()
		if n.kind != tokString && n.kind != tokWord {
			return c.errorf(n, "syntax error, expected counter name")
		}
		c.emit(&expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: n.text})
		return nil
	}
	if c.peekWord("packets") {
		return c.errorf(c.peek(), "counters with initial values are not supported")
	}
	c.emit(&expr.Counter{})
	return nil
}

// reject compiles `reject` and `reject with tcp reset`: ICMP port
// unreachable for the table's family, as nft does.
func (c *ruleCompiler) reject() error {
	c.next()
	if c.peekWord("with") {
		w := c.next()
		proto, _ := c.word("reject type")
		if proto.text != "tcp" {
			return c.errorf(w, "only \"reject\" and \"reject with tcp reset\" are supported")
		}
		if r, _ := c.word("reset"); r.text != "reset" {
			return c.errorf(r, "syntax error, expected \"reset\"")
		}
		if !c.matchesTCP() {
			// nft adds the protocol dependency unless the rule has it.
			c.emit(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}})
		}
		c.emit(&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
		return nil
	}
	switch c.family {
	case "ip":
		c.emit(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}) // ICMP_PORT_UNREACH
	case "ip6":
		c.emit(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 4}) // ICMPV6_PORT_UNREACH
	default:
		c.emit(&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH})
	}
	return nil
}

// matchesTCP reports whether the rule so far matches `meta l4proto tcp`.
func (c *ruleCompiler) matchesTCP() bool {
	for i := 0; i+1 < len(c.out.exprs); i++ {
		m, ok1 := c.out.exprs[i].(*expr.Meta)
		cmp, ok2 := c.out.exprs[i+1].(*expr.Cmp)
		if ok1 && ok2 && m.Key == expr.MetaKeyL4PROTO && cmp.Op == expr.CmpOpEq && bytes.Equal(cmp.Data, []byte{unix.IPPROTO_TCP}) {
			return true
		}
	}
	return false
}

func (c *ruleCompiler) masquerade() error {
	c.next()
	m := &expr.Masq{}
	for {
		switch {
		case c.peekWord("random"):
			m.Random = true
		case c.peekWord("fully-random"):
			m.FullyRandom = true
		case c.peekWord("persistent"):
			m.Persistent = true
		case c.peekWord("to"):
			return c.errorf(c.peek(), "masquerade to a port is not supported")
		default:
			c.emit(m)
			return nil
		}
		c.next()
		if c.peek().kind == tokComma {
			c.next()
		}
	}
}

// nat compiles `dnat|snat [ip|ip6] [addr . port] to TARGET`, where TARGET is
// `ADDR`, `ADDR:PORT`, `[ADDR6]:PORT`, or `SELECTOR map { k : addr [. port], ... }`.
func (c *ruleCompiler) nat() error {
	kw := c.next()
	n := &expr.NAT{Type: expr.NATTypeDestNAT}
	if kw.text == "snat" {
		n.Type = expr.NATTypeSourceNAT
	}
	natFamily := c.family
	if c.peekWord("ip", "ip6") {
		natFamily = c.next().text
	}
	addrPort := false
	if c.peekWord("addr") {
		c.next()
		if !c.peekWord(".") {
			return c.errorf(c.peek(), "syntax error, expected \". port\"")
		}
		c.next()
		if p, _ := c.word("port"); p.text != "port" {
			return c.errorf(p, "syntax error, expected \"port\"")
		}
		addrPort = true
	}
	if t, err := c.word("\"to\""); err != nil || t.text != "to" {
		return c.errorf(t, "syntax error, expected \"to\"")
	}
	target := c.peek()
	if selectorWords[target.text] {
		return c.natMap(n, natFamily, addrPort)
	}
	c.next()
	addrText, portText := target.text, ""
	if strings.HasPrefix(addrText, "[") {
		end := strings.Index(addrText, "]")
		if end < 0 {
			return c.errorf(target, "invalid address %q", addrText)
		}
		addrText, portText = target.text[1:end], strings.TrimPrefix(target.text[end+1:], ":")
	} else if strings.Count(addrText, ":") == 1 {
		addrText, portText, _ = strings.Cut(addrText, ":")
	}
	addr, err := netip.ParseAddr(addrText)
	if err != nil {
		return c.errorf(target, "invalid NAT address %q", target.text)
	}
	if natFamily == "inet" {
		natFamily = map[bool]string{true: "ip", false: "ip6"}[addr.Is4()]
	}
	if addr.Is4() != (natFamily == "ip") {
		return c.errorf(target, "address %s does not match family %s", addr, natFamily)
	}
	n.Family = nfproto(natFamily)
	n.RegAddrMin = 1
	c.emit(&expr.Immediate{Register: 1, Data: addr.AsSlice()})
	if portText != "" {
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			return c.errorf(target, "invalid port %q", portText)
		}
		c.emit(&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, uint16(port))})
		n.RegProtoMin = 2
		n.Specified = true
	}
	c.emit(n)
	return nil
}

// natMap compiles `dnat ip addr . port to numgen random mod N map { ... }`.
func (c *ruleCompiler) natMap(n *expr.NAT, natFamily string, addrPort bool) error {
	if natFamily == "inet" {
		return c.errorf(c.peek(), "NAT maps in the inet family need \"dnat ip\" or \"dnat ip6\"")
	}
	sels, err := c.selectors()
	if err != nil {
		return err
	}
	if m, err := c.word("\"map\""); err != nil || m.text != "map" {
		return c.errorf(m, "syntax error, expected \"map\"")
	}
	addrType := typeIPv4Addr
	if natFamily == "ip6" {
		addrType = typeIPv6Addr
	}
	data := keyType{addrType}
	if addrPort {
		data = keyType{addrType, typeInetService}
	}
	if err := c.loadConcat(sels); err != nil {
		return err
	}
	lookup, err := c.mapRHS(concatType(sels), data)
	if err != nil {
		return err
	}
	lookup.DestRegister, lookup.IsDestRegSet = 1, true
	c.emit(lookup)
	n.Family = nfproto(natFamily)
	n.RegAddrMin = 1
	if addrPort {
		n.RegProtoMin = 8 + uint32(regSize(addrType.size)/4)
	}
	c.emit(n)
	return nil
}

func nfproto(family string) uint32 {
	if family == "ip6" {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// dynset compiles `update @set { SELECTOR }` and `add @set { SELECTOR }`.
func (c *ruleCompiler) dynset() error {
	op := c.next()
	name := strings.TrimPrefix(c.next().text, "@")
	if t := c.next(); t.kind != tokLBrace {
		return c.errorf(t, "syntax error, expected \"{\"")
	}
	sels, err := c.selectors()
	if err != nil {
		return err
	}
	if t := c.next(); t.kind != tokRBrace {
		return c.errorf(t, "syntax error, expected \"}\" (element timeouts are not supported)")
	}
	if err := c.loadConcat(sels); err != nil {
		return err
	}
	d := &expr.Dynset{SrcRegKey: 1, SetName: name, SetID: c.env.setID(name), Operation: unix.NFT_DYNSET_OP_ADD}
	if op.text == "update" {
		d.Operation = unix.NFT_DYNSET_OP_UPDATE
	}
	c.emit(d)
	return nil
}

// matchOrMangle compiles statements that start with a selector:
//
//	SEL [and MASK] [op] VALUE | @set | { elements }   (match)
//	SEL . SEL ... @set | { elements }                  (concatenated lookup)
//	SEL [. SEL ...] vmap @map | { k : verdict, ... }   (verdict map)
//	SEL set VALUE | SEL set SEL or|xor|and VALUE       (mark mangling)
func (c *ruleCompiler) matchOrMangle() error {
	start := c.peek()
	sels, err := c.selectors()
	if err != nil {
		return err
	}
	if c.peekWord("set") {
		if len(sels) != 1 || sels[0].store == nil {
			return c.errorf(start, "this expression cannot be set")
		}
		c.next()
		return c.mangle(sels[0])
	}
	if c.peekWord("vmap") {
		c.next()
		if err := c.loadConcat(sels); err != nil {
			return err
		}
		lookup, err := c.mapRHS(concatType(sels), keyType{typeVerdict})
		if err != nil {
			return err
		}
		lookup.DestRegister, lookup.IsDestRegSet = 0, true
		c.emit(lookup)
		return nil
	}
	if len(sels) > 1 {
		invert := false
		if c.peekWord("!=") {
			c.next()
			invert = true
		} else if c.peekWord("==") {
			c.next()
		}
		if err := c.loadConcat(sels); err != nil {
			return err
		}
		lookup, err := c.setRHS(concatType(sels))
		if err != nil {
			return err
		}
		lookup.Invert = invert
		c.emit(lookup)
		return nil
	}
	return c.match(sels[0])
}

// match compiles a comparison of one selector.
func (c *ruleCompiler) match(s *selector) error {
	var mask []byte
	if c.peekWord("and", "&") {
		c.next()
		t, err := c.word("mask")
		if err != nil {
			return err
		}
		if mask, err = s.typ.parse(t.text); err != nil {
			return c.errorf(t, "%v", err)
		}
	}
	op := ""
	if c.peekWord("==", "!=", "eq", "ne") {
		op = map[string]string{"==": "==", "eq": "==", "!=": "!=", "ne": "!="}[c.next().text]
	}
	cmpOp := expr.CmpOpEq
	if op == "!=" {
		cmpOp = expr.CmpOpNeq
	}
	rhs := c.peek()
	c.emit(s.deps...)

	// Set lookups: `@name` or `{ a, b }`.
	if strings.HasPrefix(rhs.text, "@") || rhs.kind == tokLBrace {
		if mask != nil {
			return c.errorf(rhs, "masked set lookups are not supported")
		}
		if rhs.kind == tokLBrace {
			if elems, ok := c.singleElement(); ok {
				// nft compares directly against a one-element anonymous set.
				return c.compare(s, cmpOp, elems, rhs)
			}
		}
		c.emit(s.load(1)...)
		lookup, err := c.setRHS(keyType{s.typ})
		if err != nil {
			return err
		}
		lookup.Invert = op == "!="
		c.emit(lookup)
		return nil
	}
	c.next()
	if rhs.kind != tokWord && rhs.kind != tokString {
		return c.errorf(rhs, "syntax error, expected a value, got %s", rhs)
	}

	if mask != nil {
		value, err := s.typ.parse(rhs.text)
		if err != nil {
			return c.errorf(rhs, "%v", err)
		}
		c.emit(s.load(1)...)
		c.emit(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))})
		c.emit(&expr.Cmp{Op: cmpOp, Register: 1, Data: value})
		return nil
	}
	// Flag types: `ct state new` tests bits; `ct state == new` compares.
	// `established,related` lexes as words and commas.
	text := rhs.text
	for s.typ.flags && c.peek().kind == tokComma {
		c.next()
		w, err := c.word("flag")
		if err != nil {
			return err
		}
		text += "," + w.text
	}
	if s.typ.flags && op != "==" {
		value, err := s.typ.parse(text)
		if err != nil {
			return c.errorf(rhs, "%v", err)
		}
		c.emit(s.load(1)...)
		c.emit(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(value)), Mask: value, Xor: make([]byte, len(value))})
		flagOp := expr.CmpOpNeq
		if op == "!=" {
			flagOp = expr.CmpOpEq
		}
		c.emit(&expr.Cmp{Op: flagOp, Register: 1, Data: make([]byte, len(value))})
		return nil
	}
	return c.compare(s, cmpOp, text, rhs)
}

// compare compiles SEL op VALUE, including prefixes (`10.0.0.0/8`) and
// interface-name wildcards (`veth*`), the way nft does: byte-aligned prefixes
// shorten the payload load, others are masked.
func (c *ruleCompiler) compare(s *selector, op expr.CmpOp, text string, at token) error {
	if s.typ == typeIfname && strings.HasSuffix(text, "*") && !strings.HasSuffix(text, "\\*") {
		prefix := strings.TrimSuffix(text, "*")
		c.emit(s.load(1)...)
		c.emit(&expr.Cmp{Op: op, Register: 1, Data: []byte(prefix)})
		return nil
	}
	r, err := s.typ.parseRange(text)
	if err != nil {
		return c.errorf(at, "%v", err)
	}
	if r.single() {
		c.emit(s.load(1)...)
		c.emit(&expr.Cmp{Op: op, Register: 1, Data: r.first})
		return nil
	}
	bits := prefixLen(r.first, r.last)
	if bits < 0 {
		return c.errorf(at, "value ranges are only supported in sets")
	}
	size := len(r.first)
	if s.payload != nil && bits%8 == 0 && bits > 0 {
		p := *s.payload
		p.Len = uint32(bits / 8)
		c.emit(&p)
		c.emit(&expr.Cmp{Op: op, Register: 1, Data: r.first[:bits/8]})
		return nil
	}
	mask := make([]byte, size)
	for i := 0; i < bits; i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	c.emit(s.load(1)...)
	c.emit(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(size), Mask: mask, Xor: make([]byte, size)})
	c.emit(&expr.Cmp{Op: op, Register: 1, Data: r.first})
	return nil
}

// singleElement reports whether the anonymous set at the cursor has exactly
// one simple element, consuming it if so.
func (c *ruleCompiler) singleElement() (string, bool) {
	if c.pos+2 < len(c.toks) && c.toks[c.pos].kind == tokLBrace && c.toks[c.pos+1].kind == tokWord &&
		c.toks[c.pos+2].kind == tokRBrace {
		v := c.toks[c.pos+1].text
		c.pos += 3
		return v, true
	}
	return "", false
}

// mangle compiles `SEL set VALUE` and `SEL set SEL or|xor|and VALUE`.
func (c *ruleCompiler) mangle(s *selector) error {
	if _, ok := selectorWords[c.peek().text]; ok {
		src, err := c.selector()
		if err != nil {
			return err
		}
		if src.typ != s.typ {
			return c.errorf(c.peek(), "type mismatch in set statement")
		}
		opTok, err := c.word("operator")
		if err != nil {
			return err
		}
		valTok, err := c.word("value")
		if err != nil {
			return err
		}
		value, err := s.typ.parse(valTok.text)
		if err != nil {
			return c.errorf(valTok, "%v", err)
		}
		v := s.typ.uintOf(value)
		var mask, xor uint64
		switch opTok.text {
		case "or", "|":
			mask, xor = ^v, v
		case "xor", "^":
			mask, xor = 0xffffffff, v
		case "and", "&":
			mask, xor = v, 0
		default:
			return c.errorf(opTok, "unsupported operator %q", opTok.text)
		}
		c.emit(src.load(1)...)
		c.emit(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(s.typ.size),
			Mask: s.typ.putUint(mask & 0xffffffff), Xor: s.typ.putUint(xor)})
		c.emit(s.store(1)...)
		return nil
	}
	valTok, err := c.word("value")
	if err != nil {
		return err
	}
	value, err := s.typ.parse(valTok.text)
	if err != nil {
		return c.errorf(valTok, "%v", err)
	}
	c.emit(&expr.Immediate{Register: 1, Data: value})
	c.emit(s.store(1)...)
	return nil
}

// loadConcat emits loads of concatenated selectors into consecutive 32-bit
// registers (the first one addressed as NFT_REG_1, as nft does).
func (c *ruleCompiler) loadConcat(sels []*selector) error {
	slot := 0
	for _, s := range sels {
		c.emit(s.deps...)
	}
	for _, s := range sels {
		reg := uint32(1)
		if slot > 0 {
			reg = 8 + uint32(slot)
		}
		c.emit(s.load(reg)...)
		slot += regSize(s.typ.size) / 4
	}
	if slot > 16 {
		return c.errorf(c.peek(), "concatenation too long")
	}
	return nil
}

func concatType(sels []*selector) keyType {
	k := make(keyType, len(sels))
	for i, s := range sels {
		k[i] = s.typ
	}
	return k
}

// setRHS compiles the right side of a set membership test: `@name` or an
// anonymous set `{ a, b/16, c }`.
func (c *ruleCompiler) setRHS(key keyType) (*expr.Lookup, error) {
	t := c.next()
	if strings.HasPrefix(t.text, "@") {
		name := strings.TrimPrefix(t.text, "@")
		if name == "" {
			n, err := c.word("set name")
			if err != nil {
				return nil, err
			}
			name = n.text
		}
		return &expr.Lookup{SourceRegister: 1, SetName: name, SetID: c.env.setID(name)}, nil
	}
	if t.kind != tokLBrace {
		return nil, c.errorf(t, "syntax error, expected a set")
	}
	specs, err := c.braceElements()
	if err != nil {
		return nil, err
	}
	return c.anonLookup(key, nil, specs, t)
}

// mapRHS compiles the right side of `vmap` and `map`: `@name` or an anonymous
// map `{ k : v, ... }`.
func (c *ruleCompiler) mapRHS(key, data keyType) (*expr.Lookup, error) {
	t := c.peek()
	if strings.HasPrefix(t.text, "@") {
		return c.setRHS(key)
	}
	c.next()
	if t.kind != tokLBrace {
		return nil, c.errorf(t, "syntax error, expected a map")
	}
	specs, err := c.braceElements()
	if err != nil {
		return nil, err
	}
	return c.anonLookup(key, data, specs, t)
}

// anonLookup adds an anonymous constant set or map to the batch and returns
// a lookup of it.
func (c *ruleCompiler) anonLookup(key, data keyType, specs []elementSpec, at token) (*expr.Lookup, error) {
	interval := false
	if len(key) == 1 && data == nil {
		for _, s := range specs {
			if strings.ContainsAny(strings.Join(s.key, ""), "/-") && (key[0] == typeIPv4Addr || key[0] == typeIPv6Addr || key[0] == typeInetService) {
				interval = true
			}
		}
	}
	set := newSet(key, data)
	set.Anonymous, set.Constant, set.Interval = true, true, interval
	elems, err := buildElements(key, data, interval, true, specs)
	if err != nil {
		return nil, c.errorf(at, "%v", err)
	}
	if err := c.env.addAnonSet(set, elems); err != nil {
		return nil, c.errorf(at, "%v", err)
	}
	return &expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID}, nil
}

// braceElements parses `{ k [: v], ... }` after the opening brace.
func (c *ruleCompiler) braceElements() ([]elementSpec, error) {
	var specs []elementSpec
	cur := elementSpec{pos: c.peek()}
	inValue := false
	flush := func() error {
		if len(cur.key) == 0 {
			return c.errorf(cur.pos, "syntax error, empty element")
		}
		specs = append(specs, cur)
		cur, inValue = elementSpec{pos: c.peek()}, false
		return nil
	}
	for {
		t := c.next()
		switch {
		case t.kind == tokEOF:
			return nil, c.errorf(t, "syntax error, missing \"}\"")
		case t.kind == tokRBrace:
			if len(cur.key) > 0 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			if len(specs) == 0 {
				return nil, c.errorf(t, "syntax error, empty set")
			}
			return specs, nil
		case t.kind == tokComma:
			if err := flush(); err != nil {
				return nil, err
			}
		case t.kind == tokWord && t.text == ":" && !inValue:
			inValue = true
		case t.kind == tokWord && inValue:
			cur.value = append(cur.value, t.text)
		case t.kind == tokWord:
			cur.key = append(cur.key, t.text)
		default:
			return nil, c.errorf(t, "syntax error, unexpected %s", t)
		}
	}
}

// newSet returns a set definition for a key type and (for maps) a data type.
func newSet(key, data keyType) *nftables.Set {
	s := &nftables.Set{KeyType: setDatatype(key), KeyByteOrder: byteOrderOf(key)}
	if data != nil {
		s.IsMap = true
		s.DataType = setDatatype(data)
	}
	return s
}

func setDatatype(k keyType) nftables.SetDatatype {
	dt := nftables.SetDatatype{Name: k.String(), Bytes: uint32(k.size())}
	dt.SetNFTMagic(k.magic())
	return dt
}

// selector is an expression that loads a value: a packet field, packet
// metadata, conntrack state, a FIB result or a generated number.
type selector struct {
	typ     *dataType
	load    func(reg uint32) []expr.Any
	store   func(reg uint32) []expr.Any // for `meta mark set ...`; nil if read-only
	payload *expr.Payload               // set for packet fields (prefix loads)
	deps    []expr.Any                  // implicit protocol matches, as nft adds
}

// selectorWords are the first words of the selectors this nft understands.
var selectorWords = map[string]bool{
	"ip": true, "ip6": true, "th": true, "tcp": true, "udp": true, "sctp": true, "meta": true,
	"mark": true, "iifname": true, "oifname": true, "ct": true, "fib": true, "numgen": true,
}

// selectors parses `SEL [. SEL ...]`.
func (c *ruleCompiler) selectors() ([]*selector, error) {
	var sels []*selector
	for {
		s, err := c.selector()
		if err != nil {
			return nil, err
		}
		sels = append(sels, s)
		if !c.peekWord(".") {
			return sels, nil
		}
		c.next()
	}
}

func payloadSelector(base expr.PayloadBase, offset, size uint32, typ *dataType) *selector {
	p := &expr.Payload{OperationType: expr.PayloadLoad, Base: base, Offset: offset, Len: size, DestRegister: 1}
	return &selector{
		typ:     typ,
		payload: p,
		load: func(reg uint32) []expr.Any {
			q := *p
			q.DestRegister = reg
			return []expr.Any{&q}
		},
	}
}

func metaSelector(key expr.MetaKey, typ *dataType, settable bool) *selector {
	s := &selector{typ: typ, load: func(reg uint32) []expr.Any {
		return []expr.Any{&expr.Meta{Key: key, Register: reg}}
	}}
	if settable {
		s.store = func(reg uint32) []expr.Any {
			return []expr.Any{&expr.Meta{Key: key, SourceRegister: true, Register: reg}}
		}
	}
	return s
}

// selector parses one selector.
func (c *ruleCompiler) selector() (*selector, error) {
	t, err := c.word("expression")
	if err != nil {
		return nil, err
	}
	field := func() (token, error) { return c.word(t.text + " field") }
	switch t.text {
	case "ip", "ip6":
		f, err := field()
		if err != nil {
			return nil, err
		}
		if c.family != "inet" && c.family != t.text {
			return nil, c.errorf(t, "%q matches are not possible in family %s", t.text, c.family)
		}
		var s *selector
		switch {
		case t.text == "ip" && f.text == "saddr":
			s = payloadSelector(expr.PayloadBaseNetworkHeader, 12, 4, typeIPv4Addr)
		case t.text == "ip" && f.text == "daddr":
			s = payloadSelector(expr.PayloadBaseNetworkHeader, 16, 4, typeIPv4Addr)
		case t.text == "ip" && f.text == "protocol":
			s = payloadSelector(expr.PayloadBaseNetworkHeader, 9, 1, typeInetProto)
		case t.text == "ip6" && f.text == "saddr":
			s = payloadSelector(expr.PayloadBaseNetworkHeader, 8, 16, typeIPv6Addr)
		case t.text == "ip6" && f.text == "daddr":
			s = payloadSelector(expr.PayloadBaseNetworkHeader, 24, 16, typeIPv6Addr)
		case t.text == "ip6" && f.text == "nexthdr":
			s = payloadSelector(expr.PayloadBaseNetworkHeader, 6, 1, typeInetProto)
		default:
			return nil, c.errorf(f, "unsupported field %s %s", t.text, f.text)
		}
		if c.family == "inet" {
			proto := byte(unix.NFPROTO_IPV4)
			if t.text == "ip6" {
				proto = unix.NFPROTO_IPV6
			}
			s.deps = []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}}}
		}
		return s, nil
	case "th", "tcp", "udp", "sctp":
		f, err := field()
		if err != nil {
			return nil, err
		}
		var s *selector
		switch f.text {
		case "sport":
			s = payloadSelector(expr.PayloadBaseTransportHeader, 0, 2, typeInetService)
		case "dport":
			s = payloadSelector(expr.PayloadBaseTransportHeader, 2, 2, typeInetService)
		default:
			return nil, c.errorf(f, "unsupported field %s %s", t.text, f.text)
		}
		if t.text != "th" {
			s.deps = []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(protoNumbers[t.text])}}}
		}
		return s, nil
	case "meta":
		f, err := field()
		if err != nil {
			return nil, err
		}
		return c.metaField(f)
	case "mark", "iifname", "oifname":
		return c.metaField(t)
	case "ct":
		f, err := field()
		if err != nil {
			return nil, err
		}
		key, typ := map[string]expr.CtKey{"state": expr.CtKeySTATE, "status": expr.CtKeySTATUS, "mark": expr.CtKeyMARK}[f.text],
			map[string]*dataType{"state": typeCTState, "status": typeCTStatus, "mark": typeMark}[f.text]
		if typ == nil {
			return nil, c.errorf(f, "unsupported field ct %s", f.text)
		}
		s := &selector{typ: typ, load: func(reg uint32) []expr.Any {
			return []expr.Any{&expr.Ct{Key: key, Register: reg}}
		}}
		if f.text == "mark" {
			s.store = func(reg uint32) []expr.Any {
				return []expr.Any{&expr.Ct{Key: key, Register: reg, SourceRegister: true}}
			}
		}
		return s, nil
	case "fib":
		f, err := field()
		if err != nil {
			return nil, err
		}
		if f.text != "saddr" && f.text != "daddr" {
			return nil, c.errorf(f, "unsupported fib lookup %q (only \"fib saddr type\" and \"fib daddr type\")", f.text)
		}
		if r, err := c.word("\"type\""); err != nil || r.text != "type" {
			return nil, c.errorf(r, "only \"fib %s type\" is supported", f.text)
		}
		saddr := f.text == "saddr"
		return &selector{typ: typeFibAddr, load: func(reg uint32) []expr.Any {
			return []expr.Any{&expr.Fib{Register: reg, ResultADDRTYPE: true, FlagSADDR: saddr, FlagDADDR: !saddr}}
		}}, nil
	case "numgen":
		mode, err := c.word("numgen mode")
		if err != nil {
			return nil, err
		}
		ngType := map[string]uint32{"inc": unix.NFT_NG_INCREMENTAL, "random": unix.NFT_NG_RANDOM}
		typ, ok := ngType[mode.text]
		if !ok {
			return nil, c.errorf(mode, "unsupported numgen mode %q", mode.text)
		}
		if m, _ := c.word("\"mod\""); m.text != "mod" {
			return nil, c.errorf(m, "syntax error, expected \"mod\"")
		}
		modTok, _ := c.word("modulus")
		mod, err := strconv.ParseUint(modTok.text, 10, 32)
		if err != nil || mod == 0 {
			return nil, c.errorf(modTok, "invalid numgen modulus %q", modTok.text)
		}
		var offset uint64
		if c.peekWord("offset") {
			c.next()
			offTok, _ := c.word("offset")
			if offset, err = strconv.ParseUint(offTok.text, 10, 32); err != nil {
				return nil, c.errorf(offTok, "invalid numgen offset %q", offTok.text)
			}
		}
		return &selector{typ: typeInteger, load: func(reg uint32) []expr.Any {
			return []expr.Any{&expr.Numgen{Register: reg, Modulus: uint32(mod), Type: typ, Offset: uint32(offset)}}
		}}, nil
	}
	return nil, c.errorf(t, "unsupported expression %q", t.text)
}

func (c *ruleCompiler) metaField(f token) (*selector, error) {
	switch f.text {
	case "l4proto":
		return metaSelector(expr.MetaKeyL4PROTO, typeInetProto, false), nil
	case "nfproto":
		return metaSelector(expr.MetaKeyNFPROTO, typeNFProto, false), nil
	case "mark":
		return metaSelector(expr.MetaKeyMARK, typeMark, true), nil
	case "iifname":
		return metaSelector(expr.MetaKeyIIFNAME, typeIfname, false), nil
	case "oifname":
		return metaSelector(expr.MetaKeyOIFNAME, typeIfname, false), nil
	}
	return nil, c.errorf(f, "unsupported meta key %q", f.text)
}

// byteOrderOf is the key byte order nft records in a set's userdata: host
// order for marks and other host-order values, network order otherwise.
func byteOrderOf(k keyType) binaryutil.ByteOrder {
	if len(k) == 1 && k[0].hostOrder {
		return binaryutil.NativeEndian
	}
	return binaryutil.BigEndian
}
