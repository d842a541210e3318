package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Version is what `nft --version` prints. knftables requires nft >= 1.0.1.
const (
	version     = "1.1.0"
	releaseName = "k4s pure-Go nft"
)

var familyNames = map[byte]string{unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6", unix.NFPROTO_INET: "inet"}

var hookNames = map[uint32]string{0: "prerouting", 1: "input", 2: "forward", 3: "output", 4: "postrouting"}

// jsonObj keeps key order, as nft's JSON output does (knftables does not care,
// but people reading it do).
type jsonObj []jsonField

type jsonField struct {
	key   string
	value any
}

func (o jsonObj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteString(", ")
		}
		k, _ := json.Marshal(f.key)
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteString(": ")
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// lister renders listings from kernel dumps.
type lister struct {
	sock   *nlSocket
	json   bool
	terse  bool
	handle bool
	out    io.Writer
}

// tableContents is everything in one table.
type tableContents struct {
	table    kernelTable
	counters []kernelCounter
	sets     []kernelSet
	elements map[string][]kernelElement
	chains   []kernelChain
	rules    map[string][]kernelRule
}

func (l *lister) readTable(t kernelTable, withElements bool) (*tableContents, error) {
	tc := &tableContents{table: t, elements: map[string][]kernelElement{}, rules: map[string][]kernelRule{}}
	var err error
	if tc.counters, err = readCounters(l.sock, t.family, t.name); err != nil {
		return nil, err
	}
	if tc.sets, err = readSets(l.sock, t.family, t.name); err != nil {
		return nil, err
	}
	sort.Slice(tc.sets, func(i, j int) bool { return tc.sets[i].handle < tc.sets[j].handle })
	if withElements {
		for _, s := range tc.sets {
			if tc.elements[s.name], err = readElements(l.sock, t.family, t.name, s.name); err != nil {
				return nil, err
			}
		}
	}
	if tc.chains, err = readChains(l.sock, t.family, t.name); err != nil {
		return nil, err
	}
	sort.Slice(tc.chains, func(i, j int) bool { return tc.chains[i].handle < tc.chains[j].handle })
	rules, err := readRules(l.sock, t.family, t.name, "")
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		tc.rules[r.chain] = append(tc.rules[r.chain], r)
	}
	return tc, nil
}

// findTable returns the table family/name, or ENOENT as nft reports it.
func (l *lister) findTable(family, name string) (kernelTable, error) {
	fam := byte(familyNumbers[family])
	tables, err := readTablesWithFamily(l.sock, fam)
	if err != nil {
		return kernelTable{}, err
	}
	for _, t := range tables {
		if t.name == name {
			return t, nil
		}
	}
	return kernelTable{}, unix.ENOENT
}

// list runs one list command.
func (l *lister) list(cmd *command) error {
	var items []any
	var text strings.Builder
	addTable := func(tc *tableContents, onlyChain, onlySet string) {
		if l.json {
			items = append(items, l.jsonTable(tc, onlyChain, onlySet)...)
		} else {
			l.textTable(&text, tc, onlyChain, onlySet)
		}
	}
	switch cmd.object {
	case "ruleset", "tables":
		fam := byte(unix.AF_UNSPEC)
		if cmd.family != "" {
			fam = byte(familyNumbers[cmd.family])
		}
		tables, err := readTablesWithFamily(l.sock, fam)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if cmd.object == "tables" {
				if l.json {
					items = append(items, jsonObj{{"table", tableJSON(t)}})
				} else {
					fmt.Fprintf(&text, "table %s %s\n", familyNames[t.family], t.name)
				}
				continue
			}
			tc, err := l.readTable(t, !l.terse)
			if err != nil {
				return err
			}
			addTable(tc, "", "")
		}
	case "table":
		t, err := l.findTable(cmd.family, cmd.table)
		if err != nil {
			return err
		}
		tc, err := l.readTable(t, !l.terse)
		if err != nil {
			return err
		}
		addTable(tc, "", "")
	case "chain", "set", "map":
		t, err := l.findTable(cmd.family, cmd.table)
		if err != nil {
			return err
		}
		tc, err := l.readTable(t, cmd.object != "chain")
		if err != nil {
			return err
		}
		found := false
		for _, c := range tc.chains {
			found = found || (cmd.object == "chain" && c.name == cmd.name)
		}
		for _, s := range tc.sets {
			isMap := s.flags&unix.NFT_SET_MAP != 0
			found = found || (s.name == cmd.name && isMap == (cmd.object == "map") && cmd.object != "chain")
		}
		if !found {
			return unix.ENOENT
		}
		if cmd.object == "chain" {
			addTable(tc, cmd.name, "")
		} else {
			addTable(tc, "", cmd.name)
		}
	case "counters":
		var tables []kernelTable
		if cmd.table != "" {
			t, err := l.findTable(cmd.family, cmd.table)
			if err != nil {
				return err
			}
			tables = []kernelTable{t}
		} else {
			var err error
			if tables, err = readTablesWithFamily(l.sock, unix.AF_UNSPEC); err != nil {
				return err
			}
		}
		for _, t := range tables {
			counters, err := readCounters(l.sock, t.family, t.name)
			if err != nil {
				return err
			}
			for _, c := range counters {
				if l.json {
					items = append(items, jsonObj{{"counter", counterJSON(t, c)}})
				} else {
					fmt.Fprintf(&text, "table %s %s {\n\tcounter %s {\n\t\tpackets %d bytes %d\n\t}\n}\n",
						familyNames[t.family], t.name, c.name, c.packets, c.bytes)
				}
			}
		}
	}
	if !l.json {
		_, err := io.WriteString(l.out, text.String())
		return err
	}
	meta := jsonObj{{"metainfo", jsonObj{{"version", version}, {"release_name", releaseName}, {"json_schema_version", 1}}}}
	doc := jsonObj{{"nftables", append([]any{meta}, items...)}}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(l.out, "%s\n", b)
	return err
}

func tableJSON(t kernelTable) jsonObj {
	o := jsonObj{{"family", familyNames[t.family]}, {"name", t.name}, {"handle", t.handle}}
	if t.comment != "" {
		o = append(o, jsonField{"comment", t.comment})
	}
	if t.flags&unix.NFT_TABLE_F_DORMANT != 0 {
		o = append(o, jsonField{"flags", []string{"dormant"}})
	}
	return o
}

func counterJSON(t kernelTable, c kernelCounter) jsonObj {
	o := jsonObj{{"family", familyNames[t.family]}, {"name", c.name}, {"table", t.name}, {"handle", c.handle}}
	if c.comment != "" {
		o = append(o, jsonField{"comment", c.comment})
	}
	return append(o, jsonField{"packets", c.packets}, jsonField{"bytes", c.bytes})
}

// jsonTable renders a table as nft does: the table, its counters, sets and
// maps, chains, then rules. onlyChain/onlySet restrict it to one object
// (`list chain`, `list set`). Rule expressions are not rendered: the objects
// carry family, table, chain, handle and comment.
func (l *lister) jsonTable(tc *tableContents, onlyChain, onlySet string) []any {
	t := tc.table
	fam := familyNames[t.family]
	var items []any
	whole := onlyChain == "" && onlySet == ""
	if whole {
		items = append(items, jsonObj{{"table", tableJSON(t)}})
		for _, c := range tc.counters {
			items = append(items, jsonObj{{"counter", counterJSON(t, c)}})
		}
	}
	for _, s := range tc.sets {
		if !whole && s.name != onlySet {
			continue
		}
		kind := "set"
		if s.flags&unix.NFT_SET_MAP != 0 {
			kind = "map"
		}
		o := jsonObj{{"family", fam}, {"name", s.name}, {"table", t.name}, {"type", typeJSON(s.key)}, {"handle", s.handle}}
		if kind == "map" {
			o = append(o, jsonField{"map", typeJSON(s.data)})
		}
		if s.comment != "" {
			o = append(o, jsonField{"comment", s.comment})
		}
		if s.size != 0 {
			o = append(o, jsonField{"size", s.size})
		}
		if flags := setFlags(s.flags); len(flags) > 0 {
			o = append(o, jsonField{"flags", flags})
		}
		if s.timeout != 0 {
			o = append(o, jsonField{"timeout", s.timeout / 1000})
		}
		if elems, ok := tc.elements[s.name]; ok && len(elems) > 0 {
			o = append(o, jsonField{"elem", elementsJSON(s, elems)})
		}
		items = append(items, jsonObj{{kind, o}})
	}
	for _, c := range tc.chains {
		if !whole && c.name != onlyChain {
			continue
		}
		o := jsonObj{{"family", fam}, {"table", t.name}, {"name", c.name}, {"handle", c.handle}}
		if c.comment != "" {
			o = append(o, jsonField{"comment", c.comment})
		}
		if c.hook != nil {
			o = append(o, jsonField{"type", c.typ}, jsonField{"hook", hookNames[*c.hook]}, jsonField{"prio", c.priority})
			policy := "accept"
			if c.policy != nil && *c.policy == 0 {
				policy = "drop"
			}
			o = append(o, jsonField{"policy", policy})
		}
		items = append(items, jsonObj{{"chain", o}})
	}
	for _, c := range tc.chains {
		if !whole && c.name != onlyChain || onlySet != "" {
			continue
		}
		for _, r := range tc.rules[c.name] {
			o := jsonObj{{"family", fam}, {"table", t.name}, {"chain", r.chain}, {"handle", r.handle}}
			if r.comment != "" {
				o = append(o, jsonField{"comment", r.comment})
			}
			items = append(items, jsonObj{{"rule", o}})
		}
	}
	return items
}

func typeJSON(k keyType) any {
	if k == nil {
		return "invalid"
	}
	if len(k) == 1 {
		return k[0].name
	}
	names := make([]string, len(k))
	for i, t := range k {
		names[i] = t.name
	}
	return names
}

func setFlags(f uint32) []string {
	var out []string
	for _, fl := range []struct {
		bit  uint32
		name string
	}{{unix.NFT_SET_CONSTANT, "constant"}, {unix.NFT_SET_INTERVAL, "interval"}, {unix.NFT_SET_TIMEOUT, "timeout"}, {unix.NFT_SET_EVAL, "dynamic"}} {
		if f&fl.bit != 0 {
			out = append(out, fl.name)
		}
	}
	return out
}

// valueJSON renders a key or data value of type k.
func valueJSON(k keyType, b []byte) any {
	if len(k) == 1 {
		return k[0].format(b)
	}
	var parts []any
	off := 0
	for _, t := range k {
		if off+t.size > len(b) {
			break
		}
		parts = append(parts, t.format(b[off:off+t.size]))
		off += regSize(t.size)
	}
	return jsonObj{{"concat", parts}}
}

func verdictJSON(code int32, chain string) any {
	name, v := verdictName(code, chain)
	if v.Chain != "" {
		return jsonObj{{name, jsonObj{{"target", chain}}}}
	}
	return jsonObj{{name, nil}}
}

// elementsJSON renders set elements; interval sets are folded back from
// start/end elements into values, prefixes and ranges.
func elementsJSON(s kernelSet, elems []kernelElement) []any {
	type entry struct {
		key   any
		first []byte
		e     kernelElement
	}
	var entries []entry
	if s.flags&unix.NFT_SET_INTERVAL != 0 && len(s.key) == 1 {
		sort.Slice(elems, func(i, j int) bool { return bytes.Compare(elems[i].key, elems[j].key) < 0 })
		for i, e := range elems {
			if e.flags&unix.NFT_SET_ELEM_INTERVAL_END != 0 {
				continue
			}
			last := bytes.Repeat([]byte{0xff}, len(e.key))
			if i+1 < len(elems) && elems[i+1].flags&unix.NFT_SET_ELEM_INTERVAL_END != 0 {
				last = decrement(elems[i+1].key)
			}
			entries = append(entries, entry{key: rangeJSON(s.key[0], e.key, last), first: e.key, e: e})
		}
	} else {
		for _, e := range elems {
			entries = append(entries, entry{key: valueJSON(s.key, e.key), first: e.key, e: e})
		}
		sort.SliceStable(entries, func(i, j int) bool { return bytes.Compare(entries[i].first, entries[j].first) < 0 })
	}
	out := make([]any, 0, len(entries))
	for _, en := range entries {
		key := en.key
		if en.e.comment != "" || s.flags&unix.NFT_SET_TIMEOUT != 0 {
			el := jsonObj{{"val", key}}
			if en.e.timeout != 0 {
				el = append(el, jsonField{"timeout", en.e.timeout / 1000})
			}
			if en.e.expires != 0 {
				el = append(el, jsonField{"expires", en.e.expires / 1000})
			}
			if en.e.comment != "" {
				el = append(el, jsonField{"comment", en.e.comment})
			}
			key = jsonObj{{"elem", el}}
		}
		if s.flags&unix.NFT_SET_MAP == 0 {
			out = append(out, key)
			continue
		}
		var value any
		if en.e.verdict != nil {
			value = verdictJSON(*en.e.verdict, en.e.chain)
		} else {
			value = valueJSON(s.data, en.e.data)
		}
		out = append(out, []any{key, value})
	}
	return out
}

func rangeJSON(t *dataType, first, last []byte) any {
	if bytes.Equal(first, last) {
		return t.format(first)
	}
	if t == typeIPv4Addr || t == typeIPv6Addr {
		if bits := prefixLen(first, last); bits >= 0 {
			a, _ := netip.AddrFromSlice(first)
			return jsonObj{{"prefix", jsonObj{{"addr", a.String()}, {"len", bits}}}}
		}
	}
	return jsonObj{{"range", []any{t.format(first), t.format(last)}}}
}

// textValue renders a JSON-shaped value in nft's text syntax.
func textValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case jsonObj:
		if len(x) == 1 {
			switch x[0].key {
			case "concat":
				var parts []string
				for _, p := range x[0].value.([]any) {
					parts = append(parts, textValue(p))
				}
				return strings.Join(parts, " . ")
			case "prefix":
				p := x[0].value.(jsonObj)
				return fmt.Sprintf("%v/%v", p[0].value, p[1].value)
			case "range":
				r := x[0].value.([]any)
				return textValue(r[0]) + "-" + textValue(r[1])
			case "elem":
				el := x[0].value.(jsonObj)
				s := textValue(el[0].value)
				for _, f := range el[1:] {
					if f.key == "comment" {
						s += fmt.Sprintf(" comment %q", f.value)
					}
				}
				return s
			}
			if x[0].value == nil {
				return x[0].key
			}
			if target, ok := x[0].value.(jsonObj); ok && len(target) == 1 {
				return fmt.Sprintf("%s %v", x[0].key, target[0].value)
			}
		}
	case []any:
		if len(x) == 2 {
			return textValue(x[0]) + " : " + textValue(x[1])
		}
	}
	return fmt.Sprint(v)
}

// textTable renders a table in nft's text layout. This nft cannot turn rule
// bytecode back into text, so rules are shown as comments with their handles.
func (l *lister) textTable(w *strings.Builder, tc *tableContents, onlyChain, onlySet string) {
	t := tc.table
	whole := onlyChain == "" && onlySet == ""
	fmt.Fprintf(w, "table %s %s {", familyNames[t.family], t.name)
	if l.handle {
		fmt.Fprintf(w, " # handle %d", t.handle)
	}
	w.WriteString("\n")
	if whole && t.comment != "" {
		fmt.Fprintf(w, "\tcomment %q\n", t.comment)
	}
	if whole {
		for _, c := range tc.counters {
			fmt.Fprintf(w, "\tcounter %s {\n\t\tpackets %d bytes %d\n\t}\n", c.name, c.packets, c.bytes)
		}
	}
	for _, s := range tc.sets {
		if !whole && s.name != onlySet {
			continue
		}
		kind, typ := "set", s.key.String()
		if s.flags&unix.NFT_SET_MAP != 0 {
			kind, typ = "map", typ+" : "+s.data.String()
		}
		fmt.Fprintf(w, "\t%s %s {\n\t\ttype %s\n", kind, s.name, typ)
		if flags := setFlags(s.flags); len(flags) > 0 {
			fmt.Fprintf(w, "\t\tflags %s\n", strings.Join(flags, ","))
		}
		if s.timeout != 0 {
			fmt.Fprintf(w, "\t\ttimeout %ds\n", s.timeout/1000)
		}
		if s.comment != "" {
			fmt.Fprintf(w, "\t\tcomment %q\n", s.comment)
		}
		if elems := tc.elements[s.name]; len(elems) > 0 {
			var parts []string
			for _, e := range elementsJSON(s, elems) {
				parts = append(parts, textValue(e))
			}
			fmt.Fprintf(w, "\t\telements = { %s }\n", strings.Join(parts, ",\n\t\t\t     "))
		}
		w.WriteString("\t}\n")
	}
	for _, c := range tc.chains {
		if !whole && c.name != onlyChain || onlySet != "" {
			continue
		}
		fmt.Fprintf(w, "\tchain %s {", c.name)
		if l.handle {
			fmt.Fprintf(w, " # handle %d", c.handle)
		}
		w.WriteString("\n")
		if c.comment != "" {
			fmt.Fprintf(w, "\t\tcomment %q\n", c.comment)
		}
		if c.hook != nil {
			policy := "accept"
			if c.policy != nil && *c.policy == 0 {
				policy = "drop"
			}
			fmt.Fprintf(w, "\t\ttype %s hook %s priority %d; policy %s;\n", c.typ, hookNames[*c.hook], c.priority, policy)
		}
		for _, r := range tc.rules[c.name] {
			fmt.Fprintf(w, "\t\t# rule handle %d", r.handle)
			if r.comment != "" {
				fmt.Fprintf(w, " comment %q", r.comment)
			}
			w.WriteString(" (rule expressions are not printed by this nft)\n")
		}
		w.WriteString("\t}\n")
	}
	w.WriteString("}\n")
}
