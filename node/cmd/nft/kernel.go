package main

import (
	"encoding/binary"

	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file reads nf_tables objects back from the kernel with netlink dumps.
// (google/nftables v0.3.0's getters drop what listings need: chain and set
// handles, table and chain comments, and the key type of verdict maps, which
// its set decoder overwrites; so the few attributes needed are decoded here.)

type kernelTable struct {
	family  byte
	name    string
	handle  uint64
	flags   uint32
	comment string
}

type kernelChain struct {
	family   byte
	table    string
	name     string
	handle   uint64
	hook     *uint32
	priority int32
	typ      string
	policy   *uint32
	comment  string
}

type kernelSet struct {
	family            byte
	table             string
	name              string
	handle            uint64
	flags             uint32
	keyMagic, keyLen  uint32
	dataMagic, dataLn uint32
	key, data         keyType // nil if the datatype is not one this nft knows
	timeout           uint64  // milliseconds
	size              uint32
	comment           string
}

type kernelElement struct {
	key, keyEnd []byte
	data        []byte
	verdict     *int32
	chain       string
	flags       uint32
	timeout     uint64 // ms
	expires     uint64 // ms
	comment     string
}

type kernelRule struct {
	chain   string
	handle  uint64
	comment string
}

type kernelCounter struct {
	name           string
	handle         uint64
	packets, bytes uint64
	comment        string
}

func decoder(b []byte) (*netlink.AttributeDecoder, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	return ad, nil
}

func comment(b []byte, typ userdata.Type) string {
	s, _ := userdata.GetString(b, typ)
	return s
}

func strAttr(name string) netlink.Attribute {
	return netlink.Attribute{Type: 1, Data: append([]byte(name), 0)}
}

func readTables(s *nlSocket, family byte) ([]kernelTable, error) {
	replies, err := s.dump(unix.NFT_MSG_GETTABLE, family, nil)
	if err != nil {
		return nil, err
	}
	var out []kernelTable
	for _, r := range replies {
		ad, err := decoder(r)
		if err != nil {
			return nil, err
		}
		t := kernelTable{}
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_TABLE_NAME:
				t.name = ad.String()
			case unix.NFTA_TABLE_FLAGS:
				t.flags = ad.Uint32()
			case nftaTableHandle:
				t.handle = ad.Uint64()
			case nftaTableUserdata:
				t.comment = comment(ad.Bytes(), 0)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// readTablesWithFamily lists the tables of one family, or of ip, ip6 and
// inet for AF_UNSPEC, recording each table's family.
func readTablesWithFamily(s *nlSocket, family byte) ([]kernelTable, error) {
	var out []kernelTable
	fams := []byte{family}
	if family == unix.AF_UNSPEC {
		fams = []byte{unix.NFPROTO_INET, unix.NFPROTO_IPV4, unix.NFPROTO_IPV6}
	}
	for _, f := range fams {
		tables, err := readTables(s, f)
		if err != nil {
			return nil, err
		}
		for _, t := range tables {
			t.family = f
			out = append(out, t)
		}
	}
	return out, nil
}

func readChains(s *nlSocket, family byte, table string) ([]kernelChain, error) {
	replies, err := s.dump(unix.NFT_MSG_GETCHAIN, family, []netlink.Attribute{strAttr(table)})
	if err != nil {
		return nil, err
	}
	var out []kernelChain
	for _, r := range replies {
		ad, err := decoder(r)
		if err != nil {
			return nil, err
		}
		c := kernelChain{family: family}
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_CHAIN_TABLE:
				c.table = ad.String()
			case unix.NFTA_CHAIN_NAME:
				c.name = ad.String()
			case unix.NFTA_CHAIN_HANDLE:
				c.handle = ad.Uint64()
			case unix.NFTA_CHAIN_TYPE:
				c.typ = ad.String()
			case unix.NFTA_CHAIN_POLICY:
				p := ad.Uint32()
				c.policy = &p
			case nftaChainUserdata:
				c.comment = comment(ad.Bytes(), 0)
			case unix.NFTA_CHAIN_HOOK:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						switch nad.Type() {
						case unix.NFTA_HOOK_HOOKNUM:
							h := nad.Uint32()
							c.hook = &h
						case unix.NFTA_HOOK_PRIORITY:
							c.priority = int32(nad.Uint32())
						}
					}
					return nil
				})
			}
		}
		if c.table == table {
			out = append(out, c)
		}
	}
	return out, nil
}

func readSets(s *nlSocket, family byte, table string) ([]kernelSet, error) {
	replies, err := s.dump(unix.NFT_MSG_GETSET, family, []netlink.Attribute{strAttr(table)})
	if err != nil {
		return nil, err
	}
	var out []kernelSet
	for _, r := range replies {
		ad, err := decoder(r)
		if err != nil {
			return nil, err
		}
		set := kernelSet{family: family}
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_TABLE:
				set.table = ad.String()
			case unix.NFTA_SET_NAME:
				set.name = ad.String()
			case unix.NFTA_SET_FLAGS:
				set.flags = ad.Uint32()
			case unix.NFTA_SET_KEY_TYPE:
				set.keyMagic = ad.Uint32()
			case unix.NFTA_SET_KEY_LEN:
				set.keyLen = ad.Uint32()
			case unix.NFTA_SET_DATA_TYPE:
				set.dataMagic = ad.Uint32()
			case unix.NFTA_SET_DATA_LEN:
				set.dataLn = ad.Uint32()
			case unix.NFTA_SET_TIMEOUT:
				set.timeout = ad.Uint64()
			case nftaSetHandle:
				set.handle = ad.Uint64()
			case unix.NFTA_SET_USERDATA:
				set.comment = comment(ad.Bytes(), userdata.NFTNL_UDATA_SET_COMMENT)
			case unix.NFTA_SET_DESC:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						if nad.Type() == unix.NFTA_SET_DESC_SIZE {
							set.size = nad.Uint32()
						}
					}
					return nil
				})
			}
		}
		if set.table != table || set.flags&unix.NFT_SET_ANONYMOUS != 0 {
			continue
		}
		set.key = keyTypeFromMagic(set.keyMagic, int(set.keyLen))
		if set.flags&unix.NFT_SET_MAP != 0 {
			if set.dataMagic == unix.NFT_DATA_VERDICT {
				set.data = keyType{typeVerdict}
			} else {
				set.data = keyTypeFromMagic(set.dataMagic, int(set.dataLn))
			}
		}
		out = append(out, set)
	}
	return out, nil
}

func readElements(s *nlSocket, family byte, table, set string) ([]kernelElement, error) {
	replies, err := s.dump(unix.NFT_MSG_GETSETELEM, family, []netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: append([]byte(table), 0)},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: append([]byte(set), 0)},
	})
	if err != nil {
		return nil, err
	}
	var out []kernelElement
	for _, r := range replies {
		ad, err := decoder(r)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				continue
			}
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					if list.Type() != unix.NFTA_LIST_ELEM {
						continue
					}
					var e kernelElement
					list.Nested(func(ead *netlink.AttributeDecoder) error {
						decodeElement(ead, &e)
						return nil
					})
					out = append(out, e)
				}
				return nil
			})
		}
	}
	return out, nil
}

func decodeElement(ad *netlink.AttributeDecoder, e *kernelElement) {
	value := func() []byte {
		var v []byte
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				if nad.Type() == unix.NFTA_DATA_VALUE {
					v = nad.Bytes()
				}
			}
			return nil
		})
		return v
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_KEY:
			e.key = value()
		case nftaSetElemKeyEnd:
			e.keyEnd = value()
		case unix.NFTA_SET_ELEM_FLAGS:
			e.flags = ad.Uint32()
		case unix.NFTA_SET_ELEM_TIMEOUT:
			e.timeout = ad.Uint64()
		case unix.NFTA_SET_ELEM_EXPIRATION:
			e.expires = ad.Uint64()
		case unix.NFTA_SET_ELEM_USERDATA:
			e.comment = comment(ad.Bytes(), userdata.NFTNL_UDATA_SET_ELEM_COMMENT)
		case unix.NFTA_SET_ELEM_DATA:
			ad.Nested(func(dad *netlink.AttributeDecoder) error {
				for dad.Next() {
					switch dad.Type() {
					case unix.NFTA_DATA_VALUE:
						e.data = dad.Bytes()
					case unix.NFTA_DATA_VERDICT:
						dad.Nested(func(vad *netlink.AttributeDecoder) error {
							for vad.Next() {
								switch vad.Type() {
								case unix.NFTA_VERDICT_CODE:
									code := int32(vad.Uint32())
									e.verdict = &code
								case unix.NFTA_VERDICT_CHAIN:
									e.chain = vad.String()
								}
							}
							return nil
						})
					}
				}
				return nil
			})
		}
	}
}

func readRules(s *nlSocket, family byte, table, chain string) ([]kernelRule, error) {
	attrs := []netlink.Attribute{strAttr(table)}
	if chain != "" {
		attrs = append(attrs, netlink.Attribute{Type: unix.NFTA_RULE_CHAIN, Data: append([]byte(chain), 0)})
	}
	replies, err := s.dump(unix.NFT_MSG_GETRULE, family, attrs)
	if err != nil {
		return nil, err
	}
	var out []kernelRule
	for _, r := range replies {
		ad, err := decoder(r)
		if err != nil {
			return nil, err
		}
		var rule kernelRule
		var tbl string
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				tbl = ad.String()
			case unix.NFTA_RULE_CHAIN:
				rule.chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				rule.handle = ad.Uint64()
			case nftaRuleUserdata:
				rule.comment = comment(ad.Bytes(), userdata.TypeComment)
			}
		}
		if tbl == table && (chain == "" || rule.chain == chain) {
			out = append(out, rule)
		}
	}
	return out, nil
}

func readCounters(s *nlSocket, family byte, table string) ([]kernelCounter, error) {
	replies, err := s.dump(unix.NFT_MSG_GETOBJ, family, []netlink.Attribute{
		strAttr(table),
		{Type: unix.NFTA_OBJ_TYPE, Data: binary.BigEndian.AppendUint32(nil, unix.NFT_OBJECT_COUNTER)},
	})
	if err != nil {
		return nil, err
	}
	var out []kernelCounter
	for _, r := range replies {
		ad, err := decoder(r)
		if err != nil {
			return nil, err
		}
		var c kernelCounter
		var tbl string
		var typ uint32
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_OBJ_TABLE:
				tbl = ad.String()
			case unix.NFTA_OBJ_NAME:
				c.name = ad.String()
			case unix.NFTA_OBJ_TYPE:
				typ = ad.Uint32()
			case nftaObjHandle:
				c.handle = ad.Uint64()
			case nftaObjUserdata:
				c.comment = comment(ad.Bytes(), 0)
			case unix.NFTA_OBJ_DATA:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						switch nad.Type() {
						case unix.NFTA_COUNTER_BYTES:
							c.bytes = nad.Uint64()
						case unix.NFTA_COUNTER_PACKETS:
							c.packets = nad.Uint64()
						}
					}
					return nil
				})
			}
		}
		if tbl == table && typ == unix.NFT_OBJECT_COUNTER {
			out = append(out, c)
		}
	}
	return out, nil
}
