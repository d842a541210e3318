package main

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// batchMessage is one serialized netlink message and the command it came from.
type batchMessage struct {
	msg netlink.Message
	cmd int
}

// capture is an nltest.Func for google/nftables' Conn.TestDial: Conn.Flush
// hands it the serialized batch, and it keeps the messages (minus the batch
// markers) instead of sending them, answering every read with an ack.
type capture struct{ msgs []netlink.Message }

func (c *capture) dial(req []netlink.Message) ([]netlink.Message, error) {
	if req == nil {
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 20)}}, nil
	}
	for _, m := range req {
		if t := m.Header.Type; t == unix.NFNL_MSG_BATCH_BEGIN || t == unix.NFNL_MSG_BATCH_END {
			continue
		}
		c.msgs = append(c.msgs, m)
	}
	return nil, nil
}

// setInfo is what element commands and rules need to know about a set.
type setInfo struct {
	key, data keyType
	interval  bool
	timeout   bool
	id        uint32 // batch id if the set is created in this transaction
}

// transaction turns parsed commands into one netlink batch.
type transaction struct {
	conn    *nftables.Conn
	capture *capture
	kernel  func() (*nlSocket, error) // opened lazily to look up existing sets
	msgs    []batchMessage
	sets    map[string]*setInfo // "family/table/set"
	cur     int                 // index of the command being translated

	// The table of the rule being compiled (for its anonymous sets) and
	// its catalog key prefix "family/table/".
	anonTable *nftables.Table
	ruleTable string
}

func newTransaction(kernel func() (*nlSocket, error)) *transaction {
	c := &capture{}
	return &transaction{
		conn:    &nftables.Conn{TestDial: c.dial},
		capture: c,
		kernel:  kernel,
		sets:    map[string]*setInfo{},
	}
}

// commandError is an error in translating one command.
type commandError struct {
	cmd int
	err error
}

func (e *commandError) Error() string { return e.err.Error() }

func (e *commandError) Unwrap() error { return e.err }

// build translates all commands.
func (tx *transaction) build(cmds []*command) error {
	for i, cmd := range cmds {
		tx.cur = i
		if err := tx.add(cmd); err != nil {
			return &commandError{cmd: i, err: err}
		}
		if err := tx.collect(cmd); err != nil {
			return &commandError{cmd: i, err: err}
		}
	}
	return nil
}

// collect moves the messages the Conn serialized for cmd into the batch and
// applies the netlink details google/nftables has no API for: comments on
// tables and chains, NLM_F_EXCL for `create`, and `destroy` message types.
func (tx *transaction) collect(cmd *command) error {
	if err := tx.conn.Flush(); err != nil {
		return err
	}
	msgs := tx.capture.msgs
	tx.capture.msgs = nil
	for i := range msgs {
		m := &msgs[i]
		typ := m.Header.Type & 0xff
		main := i == len(msgs)-1 // the command's own message comes last (after anonymous sets)
		if cmd.comment != nil && main {
			switch typ {
			case unix.NFT_MSG_NEWTABLE:
				m.Data = appendAttr(m.Data, nftaTableUserdata, userdata.AppendString(nil, 0, *cmd.comment))
			case unix.NFT_MSG_NEWCHAIN:
				m.Data = appendAttr(m.Data, nftaChainUserdata, userdata.AppendString(nil, 0, *cmd.comment))
			case unix.NFT_MSG_NEWOBJ:
				m.Data = appendAttr(m.Data, nftaObjUserdata, userdata.AppendString(nil, 0, *cmd.comment))
			}
		}
		if typ == unix.NFT_MSG_NEWSET {
			m.Data = fixKeyByteOrder(m.Data)
		}
		if cmd.verb == "create" && main {
			m.Header.Flags |= netlink.Excl
		}
		if cmd.verb == "destroy" {
			destroy := map[netlink.HeaderType]netlink.HeaderType{
				unix.NFT_MSG_DELTABLE: nftMsgDestroyTable, unix.NFT_MSG_DELCHAIN: nftMsgDestroyChain,
				unix.NFT_MSG_DELRULE: nftMsgDestroyRule, unix.NFT_MSG_DELSET: nftMsgDestroySet,
				unix.NFT_MSG_DELSETELEM: nftMsgDestroySetElem, unix.NFT_MSG_DELOBJ: nftMsgDestroyObj,
			}
			if d, ok := destroy[typ]; ok {
				m.Header.Type = m.Header.Type&^0xff | d
			}
		}
		tx.msgs = append(tx.msgs, batchMessage{msg: *m, cmd: tx.cur})
	}
	return nil
}

func appendAttr(data []byte, typ uint16, value []byte) []byte {
	b, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: typ, Data: value}})
	if err != nil {
		return data
	}
	return append(data, b...)
}

var familyNumbers = map[string]nftables.TableFamily{
	"ip": nftables.TableFamilyIPv4, "ip6": nftables.TableFamilyIPv6, "inet": nftables.TableFamilyINet,
}

func (tx *transaction) table(cmd *command) *nftables.Table {
	return &nftables.Table{Name: cmd.table, Family: familyNumbers[cmd.family]}
}

func noHandle(cmd *command) error {
	if cmd.handle != nil {
		return fmt.Errorf("%s %s by handle is not supported, use the name", cmd.verb, cmd.object)
	}
	return nil
}

// add translates one command into Conn calls.
func (tx *transaction) add(cmd *command) error {
	if cmd.verb == "list" {
		return fmt.Errorf("list commands cannot be mixed with other commands")
	}
	t := tx.table(cmd)
	switch cmd.object {
	case "table":
		if err := noHandle(cmd); err != nil {
			return err
		}
		switch cmd.verb {
		case "add", "create":
			for _, f := range cmd.flags {
				if f != "dormant" {
					return fmt.Errorf("unsupported table flag %q", f)
				}
				t.Flags |= unix.NFT_TABLE_F_DORMANT
			}
			if cmd.verb == "create" {
				tx.conn.CreateTable(t)
			} else {
				tx.conn.AddTable(t)
			}
		case "delete", "destroy":
			tx.conn.DelTable(t)
			tx.forgetSets(cmd.family, cmd.table, "")
		case "flush":
			tx.conn.FlushTable(t)
		}
	case "chain":
		if err := noHandle(cmd); err != nil {
			return err
		}
		ch := &nftables.Chain{Name: cmd.name, Table: t}
		switch cmd.verb {
		case "add", "create":
			if s := cmd.chainSpec; s != nil {
				hooks := map[string]*nftables.ChainHook{
					"prerouting": nftables.ChainHookPrerouting, "input": nftables.ChainHookInput,
					"forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
					"postrouting": nftables.ChainHookPostrouting,
				}
				hook, ok := hooks[s.hook]
				if !ok {
					return fmt.Errorf("unsupported hook %q", s.hook)
				}
				if s.typ != "filter" && s.typ != "nat" && s.typ != "route" {
					return fmt.Errorf("unsupported chain type %q", s.typ)
				}
				prio := nftables.ChainPriority(s.priority)
				ch.Hooknum, ch.Priority, ch.Type = hook, &prio, nftables.ChainType(s.typ)
				if s.policy != "" {
					pol := nftables.ChainPolicyAccept
					if s.policy == "drop" {
						pol = nftables.ChainPolicyDrop
					}
					ch.Policy = &pol
				}
			}
			tx.conn.AddChain(ch)
		case "delete", "destroy":
			tx.conn.DelChain(ch)
		case "flush":
			tx.conn.FlushChain(ch)
		}
	case "rule":
		return tx.addRule(cmd, t)
	case "set", "map":
		if err := noHandle(cmd); err != nil {
			return err
		}
		s := &nftables.Set{Name: cmd.name, Table: t}
		switch cmd.verb {
		case "add", "create":
			return tx.addSet(cmd, t)
		case "delete", "destroy":
			tx.conn.DelSet(s)
			tx.forgetSets(cmd.family, cmd.table, cmd.name)
		case "flush":
			tx.conn.FlushSet(s)
		}
	case "element":
		return tx.addElements(cmd, t)
	case "counter":
		if err := noHandle(cmd); err != nil {
			return err
		}
		obj := &nftables.CounterObj{Table: t, Name: cmd.name}
		if cmd.verb == "add" || cmd.verb == "create" {
			tx.conn.AddObj(obj)
		} else {
			tx.conn.DeleteObject(obj)
		}
	default:
		return fmt.Errorf("unsupported object %q", cmd.object)
	}
	return nil
}

func setKey(family, table, name string) string { return family + "/" + table + "/" + name }

// forgetSets drops catalog entries of a deleted set (or of all sets of a
// deleted table, when name is empty).
func (tx *transaction) forgetSets(family, table, name string) {
	for k := range tx.sets {
		if k == setKey(family, table, name) || (name == "" && strings.HasPrefix(k, setKey(family, table, ""))) {
			delete(tx.sets, k)
		}
	}
}

func (tx *transaction) addSet(cmd *command, t *nftables.Table) error {
	spec := cmd.setSpec
	s := newSet(spec.key, spec.data)
	s.Name, s.Table = cmd.name, t
	for _, f := range spec.flags {
		switch f {
		case "constant":
			s.Constant = true
		case "interval":
			s.Interval = true
		case "timeout":
			s.HasTimeout = true
		case "dynamic":
			s.Dynamic = true
		}
	}
	if spec.timeout > 0 {
		s.HasTimeout, s.Timeout = true, spec.timeout
	}
	if s.Interval && len(spec.key) > 1 {
		return fmt.Errorf("interval sets with concatenated keys are not supported")
	}
	s.Size = spec.size
	s.AutoMerge = spec.autoMerge
	if cmd.comment != nil {
		s.Comment = *cmd.comment
	}
	if err := tx.conn.AddSet(s, nil); err != nil {
		return err
	}
	tx.sets[setKey(cmd.family, cmd.table, cmd.name)] = &setInfo{
		key: spec.key, data: spec.data, interval: s.Interval, timeout: s.HasTimeout, id: s.ID,
	}
	return nil
}

// lookupSet finds a set's types: from this transaction, else from the kernel.
func (tx *transaction) lookupSet(family, table, name string) (*setInfo, error) {
	if info, ok := tx.sets[setKey(family, table, name)]; ok {
		return info, nil
	}
	sock, err := tx.kernel()
	if err != nil {
		return nil, err
	}
	sets, err := readSets(sock, byte(familyNumbers[family]), table)
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		if s.name == name {
			info := &setInfo{key: s.key, data: s.data, interval: s.flags&unix.NFT_SET_INTERVAL != 0,
				timeout: s.flags&unix.NFT_SET_TIMEOUT != 0}
			if info.key == nil || (s.flags&unix.NFT_SET_MAP != 0 && info.data == nil) {
				return nil, fmt.Errorf("set %s has a datatype this nft does not support", name)
			}
			tx.sets[setKey(family, table, name)] = info
			return info, nil
		}
	}
	return nil, errnoErr(unix.ENOENT, fmt.Sprintf("set %s not found in table %s %s", name, family, table))
}

func (tx *transaction) addElements(cmd *command, t *nftables.Table) error {
	info, err := tx.lookupSet(cmd.family, cmd.table, cmd.name)
	if err != nil {
		return err
	}
	adding := cmd.verb == "add" || cmd.verb == "create"
	data := info.data
	if !adding {
		for _, el := range cmd.elements {
			if len(el.value) > 0 {
				return fmt.Errorf("syntax error, %s element takes keys only", cmd.verb)
			}
		}
	} else if data != nil {
		for _, el := range cmd.elements {
			if len(el.value) == 0 {
				return fmt.Errorf("map element %v needs a value", el.key)
			}
		}
	}
	elems, err := buildElements(info.key, data, info.interval, false, cmd.elements)
	if err != nil {
		return err
	}
	s := newSet(info.key, info.data)
	s.Name, s.Table, s.ID, s.HasTimeout, s.Interval = cmd.name, t, info.id, info.timeout, info.interval
	if adding {
		return tx.conn.SetAddElements(s, elems)
	}
	return tx.conn.SetDeleteElements(s, elems)
}

// setID is part of ruleEnv: the batch id of a set of the rule's table that
// this transaction creates (0 for sets that already exist).
func (tx *transaction) setID(name string) uint32 {
	if info, ok := tx.sets[tx.ruleTable+name]; ok {
		return info.id
	}
	return 0
}

// addAnonSet is part of ruleEnv.
func (tx *transaction) addAnonSet(s *nftables.Set, elems []nftables.SetElement) error {
	s.Table = tx.anonTable
	return tx.conn.AddSet(s, elems)
}

func (tx *transaction) addRule(cmd *command, t *nftables.Table) error {
	ch := &nftables.Chain{Name: cmd.name, Table: t}
	if cmd.verb == "delete" || cmd.verb == "destroy" {
		return tx.conn.DelRule(&nftables.Rule{Table: t, Chain: ch, Handle: *cmd.handle})
	}
	tx.anonTable = t
	tx.ruleTable = setKey(cmd.family, cmd.table, "")
	rule, err := compileRule(cmd.family, cmd.rule, tx)
	if err != nil {
		return err
	}
	r := &nftables.Rule{Table: t, Chain: ch, Exprs: rule.exprs}
	if rule.comment != nil {
		r.UserData = userdata.AppendString(nil, userdata.TypeComment, *rule.comment)
	}
	if cmd.index != nil {
		h, err := tx.ruleHandleAt(cmd, *cmd.index)
		if err != nil {
			return err
		}
		cmd.handle = &h
	}
	switch cmd.verb {
	case "add":
		if cmd.handle != nil {
			r.Position = *cmd.handle
		}
		tx.conn.AddRule(r)
	case "insert":
		if cmd.handle != nil {
			r.Position = *cmd.handle
		}
		tx.conn.InsertRule(r)
	case "replace":
		r.Handle = *cmd.handle
		tx.conn.ReplaceRule(r)
	}
	return nil
}

// ruleHandleAt resolves `index N` to the handle of the chain's N-th rule.
func (tx *transaction) ruleHandleAt(cmd *command, index uint64) (uint64, error) {
	sock, err := tx.kernel()
	if err != nil {
		return 0, err
	}
	rules, err := readRules(sock, byte(familyNumbers[cmd.family]), cmd.table, cmd.name)
	if err != nil {
		return 0, err
	}
	if index >= uint64(len(rules)) {
		return 0, errnoErr(unix.ENOENT, fmt.Sprintf("chain %s has no rule at index %d", cmd.name, index))
	}
	return rules[index].handle, nil
}

// rawMessages returns the batch's messages in order.
func (tx *transaction) rawMessages() []netlink.Message {
	out := make([]netlink.Message, len(tx.msgs))
	for i, m := range tx.msgs {
		out[i] = m.msg
	}
	return out
}

// fixKeyByteOrder corrects the key byte order google/nftables records in the
// userdata of anonymous sets (always "big endian"): nft records host order
// for host-order keys such as numgen's integers, and `nft list` prints the
// keys by it.
func fixKeyByteOrder(data []byte) []byte {
	if len(data) < 4 {
		return data
	}
	attrs, err := netlink.UnmarshalAttributes(data[4:])
	if err != nil {
		return data
	}
	var magic, keyLen uint32
	for _, a := range attrs {
		switch a.Type {
		case unix.NFTA_SET_KEY_TYPE:
			magic = binary.BigEndian.Uint32(a.Data)
		case unix.NFTA_SET_KEY_LEN:
			keyLen = binary.BigEndian.Uint32(a.Data)
		}
	}
	k := keyTypeFromMagic(magic, int(keyLen))
	if len(k) != 1 || !k[0].hostOrder {
		return data
	}
	for i, a := range attrs {
		if a.Type == unix.NFTA_SET_USERDATA {
			if v, ok := userdata.GetUint32(a.Data, userdata.NFTNL_UDATA_SET_KEYBYTEORDER); ok && v == 2 {
				rest := userdata.AppendUint32(nil, userdata.NFTNL_UDATA_SET_KEYBYTEORDER, 1)
				// Keep the other userdata entries (merge flag, comment).
				for typ := userdata.NFTNL_UDATA_SET_DATABYTEORDER; typ < userdata.NFTNL_UDATA_SET_MAX; typ++ {
					if d := userdata.Get(a.Data, typ); d != nil {
						rest = userdata.Append(rest, typ, d)
					}
				}
				attrs[i].Data = rest
			}
		}
	}
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return data
	}
	return append(data[:4:4], b...)
}
