// Command nft is a pure-Go subset of the nftables command-line tool: exactly
// what sigs.k8s.io/knftables (and so kube-proxy in --proxy-mode=nftables)
// sends, on top of github.com/google/nftables. It builds with CGO_ENABLED=0
// and runs as one command of the appliance's busybox.
//
// # How knftables drives nft, and how each call is served
//
//   - `nft --version`: prints "nftables v1.1.0 (...)" (knftables needs >= 1.0.1).
//   - `nft --check -f -` (knftables.New's probe and Interface.Check): the
//     transaction is parsed, serialized and sent to the kernel as one batch
//     WITHOUT the batch-end marker, so the kernel validates every message and
//     then aborts the transaction (nft's own dry run). Nothing changes.
//   - `nft -f -` (Interface.Run): the transaction on stdin is parsed, every
//     command is serialized with google/nftables' Conn (AddTable, AddChain,
//     AddSet, SetAddElements, AddRule, FlushChain, DelSet, ...) and all of
//     them are committed as ONE nfnetlink batch: all or nothing, as with nft.
//   - `nft --json [--terse] list table F T`, `nft --json list chain F T C`,
//     `nft --json list set|map F T S`, `nft --json list counters table F T`
//     (List, ListAll, ListRules, ListElements, ListCounters): the objects are
//     dumped from the kernel and printed in nft's JSON schema (version 1).
//     Rules carry family, table, chain, handle and comment, which is all
//     knftables reads; their "expr" is not rendered.
//   - `nft list table F T` and `nft list ruleset` (text, used by kube-proxy
//     only to log failures): tables, chains, sets and elements in nft's text
//     layout; rules appear as `# rule handle N` comments.
//
// Errors go to stderr in nft's format ("/dev/stdin:3:1-40: Error: Could not
// process rule: No such file or directory"), with the kernel's errno text as
// glibc spells it, so knftables.IsNotFound and IsAlreadyExists work. The exit
// status is 1 on any error.
//
// # Supported syntax
//
// Commands (families ip, ip6 and inet; one command per line or `;`-separated):
//
//	add|create|delete|destroy|flush table F T [{ comment "c" ; flags dormant ; }]
//	add|create|delete|destroy|flush chain F T C [{ type filter|nat|route hook
//	    prerouting|input|forward|output|postrouting priority N|NAME[+-N] ;
//	    policy accept|drop ; comment "c" ; }]
//	add|create|delete|destroy|flush set|map F T S { type K [. K ...] [: V [. V ...]] ;
//	    flags constant,dynamic,interval,timeout ; timeout 10800s ; size N ;
//	    auto-merge ; comment "c" ; }
//	add|create|delete|destroy element F T S { KEY [comment "c"] [: VALUE], ... }
//	add|insert rule F T C [handle N|index N] STATEMENTS [comment "c"]
//	replace rule F T C handle N STATEMENTS ; delete|destroy rule F T C handle N
//	add|create|delete|destroy counter F T NAME
//	list ruleset|tables|table|chain|set|map|counters ...
//
// Datatypes: ipv4_addr, ipv6_addr, inet_proto, inet_service, mark, ifname,
// integer, ct_state, ct_status, fib_addrtype, nf_proto, verdict, and their
// concatenations (`ipv4_addr . inet_proto . inet_service : verdict`). Interval
// sets (prefixes `10.0.0.0/8`, ranges `a-b`) take single (not concatenated)
// keys.
//
// Rule statements, compiled to the same bytecode nft generates (so the C nft
// lists them back as the same text):
//
//	ip saddr|daddr|protocol, ip6 saddr|daddr|nexthdr, th|tcp|udp|sctp sport|dport,
//	meta l4proto|nfproto|mark|iifname|oifname, mark, iifname, oifname,
//	ct state|status|mark, fib saddr|daddr type, numgen random|inc mod N [offset M]
//	    selectors, concatenated with "."
//	SEL [and MASK] [==|!=] VALUE|PREFIX|"name*"    compare (flags: `ct state new`)
//	SEL [!=] @set | { a, b/16, c-d }               set lookup (anonymous sets too)
//	SEL [. SEL ...] vmap @map | { k : VERDICT, ... }
//	mark|meta mark|ct mark set VALUE | set mark or|xor|and VALUE
//	accept, drop, return, continue, jump C, goto C
//	counter, counter name "N", reject, reject with tcp reset
//	masquerade [random] [fully-random] [persistent]
//	dnat|snat [ip|ip6] to ADDR[:PORT] | [ADDR6]:PORT
//	dnat|snat ip|ip6 [addr . port] to SEL map { k : ADDR [. PORT], ... }
//	update|add @set { SEL [. SEL ...] }
//	comment "text"
//
// Everything else is rejected with an error naming the unsupported piece:
// `typeof` declarations, set policy and gc-interval, deleting objects other
// than rules by handle, element timeouts, netdev/bridge/arp families and
// device hooks, `reset`, `--echo`, the nested `table { chain { ... } }` file
// syntax, and statements such as log, limit, queue, notrack and meta set
// of keys other than mark.
package main
