package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// dataType is one of nft's datatypes (datatype.h): how a value of the type is
// written in the text syntax, how it is laid out in a register or set key, and
// how it is printed back (in the JSON shape `nft --json` uses).
type dataType struct {
	name      string
	magic     uint32 // NFTA_SET_KEY_TYPE / NFTA_SET_DATA_TYPE id
	size      int    // bytes; 0 for verdict
	hostOrder bool   // stored in host byte order (marks, ct state, numgen output, ...)
	// symbols maps names to values for symbolic types (inet_proto, ct_state, ...).
	symbols map[string]uint64
	// flags reports that values are bitmasks (ct_state, ct_status): a bare
	// `ct state new` is a flag test, and `a,b` combines flags.
	flags bool
}

var (
	typeVerdict     = &dataType{name: "verdict", magic: 1}
	typeInteger     = &dataType{name: "integer", magic: 4, size: 4, hostOrder: true}
	typeIPv4Addr    = &dataType{name: "ipv4_addr", magic: 7, size: 4}
	typeIPv6Addr    = &dataType{name: "ipv6_addr", magic: 8, size: 16}
	typeInetProto   = &dataType{name: "inet_proto", magic: 12, size: 1, symbols: protoNumbers}
	typeInetService = &dataType{name: "inet_service", magic: 13, size: 2}
	typeMark        = &dataType{name: "mark", magic: 19, size: 4, hostOrder: true}
	typeCTState     = &dataType{name: "ct_state", magic: 26, size: 4, hostOrder: true, flags: true, symbols: map[string]uint64{
		"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64,
	}}
	typeCTStatus = &dataType{name: "ct_status", magic: 28, size: 4, hostOrder: true, flags: true, symbols: map[string]uint64{
		"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 0x10, "dnat": 0x20, "dying": 0x200,
	}}
	typeFibAddr = &dataType{name: "fib_addrtype", magic: 38, size: 4, hostOrder: true, symbols: map[string]uint64{
		"unspec": 0, "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5,
		"blackhole": 6, "unreachable": 7, "prohibit": 8,
	}}
	typeIfname  = &dataType{name: "ifname", magic: 41, size: 16}
	typeNFProto = &dataType{name: "nf_proto", magic: 2, size: 1, symbols: map[string]uint64{"ipv4": 2, "ipv6": 10}}
)

// protoNumbers are the protocol names nft prints for inet_proto (from /etc/protocols).
var protoNumbers = map[string]uint64{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47, "esp": 50, "ah": 51,
	"icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "udplite": 136,
}

// setTypes are the datatypes accepted in `type a . b : c` set and map
// declarations (a function rather than an init-time map: this command shares
// one busybox binary with many others).
func setTypes() []*dataType {
	return []*dataType{typeVerdict, typeInteger, typeIPv4Addr, typeIPv6Addr, typeInetProto,
		typeInetService, typeMark, typeCTState, typeCTStatus, typeFibAddr, typeIfname, typeNFProto}
}

func typeByName(name string) *dataType {
	for _, t := range setTypes() {
		if t.name == name {
			return t
		}
	}
	return nil
}

// keyType is a (possibly concatenated) set key or map data type.
type keyType []*dataType

func (k keyType) String() string {
	names := make([]string, len(k))
	for i, t := range k {
		names[i] = t.name
	}
	return strings.Join(names, " . ")
}

// magic is the NFTA_SET_KEY_TYPE value: 6 bits per concatenated component.
func (k keyType) magic() uint32 {
	if len(k) == 1 {
		return k[0].magic
	}
	var m uint32
	for _, t := range k {
		m = m<<6 | t.magic&0x3f
	}
	return m
}

// size is the key length: concatenated components are padded to 4-byte registers.
func (k keyType) size() int {
	if len(k) == 1 {
		return k[0].size
	}
	n := 0
	for _, t := range k {
		n += regSize(t.size)
	}
	return n
}

func (k keyType) isVerdict() bool { return len(k) == 1 && k[0] == typeVerdict }

// regSize rounds a value size up to whole 32-bit registers.
func regSize(n int) int { return (n + 3) &^ 3 }

// keyTypeFromMagic reverses keyType.magic for sets read back from the kernel.
func keyTypeFromMagic(magic uint32, size int) keyType {
	if t := typeByMagic(magic); t != nil && (t.size == size || t == typeVerdict) {
		return keyType{t}
	}
	var k keyType
	for m := magic; m != 0; m >>= 6 {
		t := typeByMagic(m & 0x3f)
		if t == nil {
			return nil
		}
		k = append(keyType{t}, k...)
	}
	if k.size() != size {
		return nil
	}
	return k
}

func typeByMagic(m uint32) *dataType {
	for _, t := range setTypes() {
		if t.magic == m {
			return t
		}
	}
	return nil
}

// parseKeyType parses `ipv4_addr . inet_proto . inet_service`.
func parseKeyType(words []string) (keyType, error) {
	var k keyType
	for i, w := range words {
		if i%2 == 1 {
			if w != "." {
				return nil, fmt.Errorf("expected \".\" between datatypes, got %q", w)
			}
			continue
		}
		t := typeByName(w)
		if t == nil {
			return nil, fmt.Errorf("unsupported datatype %q", w)
		}
		k = append(k, t)
	}
	if len(k) == 0 || len(words)%2 == 0 {
		return nil, fmt.Errorf("incomplete datatype %q", strings.Join(words, " "))
	}
	return k, nil
}

// putUint writes v into a size-byte value in the type's byte order.
func (t *dataType) putUint(v uint64) []byte {
	b := make([]byte, t.size)
	switch t.size {
	case 1:
		b[0] = byte(v)
	case 2:
		if t.hostOrder {
			binary.NativeEndian.PutUint16(b, uint16(v))
		} else {
			binary.BigEndian.PutUint16(b, uint16(v))
		}
	case 4:
		if t.hostOrder {
			binary.NativeEndian.PutUint32(b, uint32(v))
		} else {
			binary.BigEndian.PutUint32(b, uint32(v))
		}
	}
	return b
}

// uintOf reads a value written by putUint.
func (t *dataType) uintOf(b []byte) uint64 {
	switch {
	case len(b) >= 4 && t.size == 4:
		if t.hostOrder {
			return uint64(binary.NativeEndian.Uint32(b))
		}
		return uint64(binary.BigEndian.Uint32(b))
	case len(b) >= 2 && t.size == 2:
		if t.hostOrder {
			return uint64(binary.NativeEndian.Uint16(b))
		}
		return uint64(binary.BigEndian.Uint16(b))
	case len(b) >= 1:
		return uint64(b[0])
	}
	return 0
}

func parseNumber(s string) (uint64, error) {
	return strconv.ParseUint(s, 0, 64)
}

// parse parses one value of the type (no prefixes or ranges; see parseRange).
func (t *dataType) parse(s string) ([]byte, error) {
	switch t {
	case typeIPv4Addr, typeIPv6Addr:
		a, err := netip.ParseAddr(s)
		if err != nil || a.Is4() != (t == typeIPv4Addr) {
			return nil, fmt.Errorf("invalid %s value %q", t.name, s)
		}
		return a.AsSlice(), nil
	case typeIfname:
		if len(s) >= 16 {
			return nil, fmt.Errorf("interface name %q too long", s)
		}
		b := make([]byte, 16)
		copy(b, s)
		return b, nil
	case typeVerdict:
		return nil, fmt.Errorf("verdict values are parsed as statements")
	}
	if t.flags && strings.Contains(s, ",") {
		var v uint64
		for _, part := range strings.Split(s, ",") {
			b, err := t.parse(part)
			if err != nil {
				return nil, err
			}
			v |= t.uintOf(b)
		}
		return t.putUint(v), nil
	}
	if v, ok := t.symbols[s]; ok {
		return t.putUint(v), nil
	}
	v, err := parseNumber(s)
	if err != nil {
		return nil, fmt.Errorf("invalid %s value %q", t.name, s)
	}
	if t.size < 8 && v >= 1<<(8*t.size) {
		return nil, fmt.Errorf("%s value %q out of range", t.name, s)
	}
	return t.putUint(v), nil
}

// valueRange is an inclusive range of values of one type; single values have
// first == last.
type valueRange struct {
	first, last []byte
}

func (r valueRange) single() bool { return string(r.first) == string(r.last) }

// parseRange parses a value, an address prefix (`10.0.0.0/8`) or a range (`a-b`).
func (t *dataType) parseRange(s string) (valueRange, error) {
	if t == typeIPv4Addr || t == typeIPv6Addr {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil || p.Addr().Is4() != (t == typeIPv4Addr) {
				return valueRange{}, fmt.Errorf("invalid %s prefix %q", t.name, s)
			}
			if p.Masked() != p {
				return valueRange{}, fmt.Errorf("prefix %q has host bits set", s)
			}
			first := p.Addr().AsSlice()
			return valueRange{first: first, last: prefixLast(first, p.Bits())}, nil
		}
	}
	if i := strings.Index(s, "-"); i > 0 && t != typeIfname && t.symbols == nil {
		a, err := t.parse(s[:i])
		if err != nil {
			return valueRange{}, err
		}
		b, err := t.parse(s[i+1:])
		if err != nil {
			return valueRange{}, err
		}
		return valueRange{first: a, last: b}, nil
	}
	v, err := t.parse(s)
	if err != nil {
		return valueRange{}, err
	}
	return valueRange{first: v, last: v}, nil
}

// prefixLast returns the last address of the prefix first/bits.
func prefixLast(first []byte, bits int) []byte {
	last := append([]byte(nil), first...)
	for i := range last {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits {
				last[i] |= 0x80 >> bit
			}
		}
	}
	return last
}

// prefixLen returns the prefix length if first..last is exactly a CIDR block, else -1.
func prefixLen(first, last []byte) int {
	n := len(first) * 8
	for bits := 0; bits <= n; bits++ {
		masked := make([]byte, len(first))
		for i := range first {
			for bit := 0; bit < 8; bit++ {
				if i*8+bit < bits {
					masked[i] |= first[i] & (0x80 >> bit)
				}
			}
		}
		if string(masked) == string(first) && string(prefixLast(first, bits)) == string(last) {
			return bits
		}
	}
	return -1
}

// format renders a value the way `nft --json` does: addresses and symbolic
// names as strings, numbers as numbers.
func (t *dataType) format(b []byte) any {
	switch t {
	case typeIPv4Addr, typeIPv6Addr:
		if a, ok := netip.AddrFromSlice(b); ok {
			return a.String()
		}
	case typeIfname:
		return strings.TrimRight(string(b), "\x00")
	case typeInetProto:
		for name, v := range protoNumbers {
			if len(b) > 0 && v == uint64(b[0]) && name != "ipv6-icmp" {
				return name
			}
		}
	}
	if t.symbols != nil && !t.flags && t != typeInetProto {
		v := t.uintOf(b)
		for name, sv := range t.symbols {
			if sv == v {
				return name
			}
		}
	}
	return t.uintOf(b)
}

// increment returns b+1 as a big-endian number of the same length and whether
// it overflowed (used for the exclusive end of interval set ranges).
func increment(b []byte) ([]byte, bool) {
	out := append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, false
		}
	}
	return out, true
}

// decrement returns b-1 (big endian).
func decrement(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			break
		}
	}
	return out
}
