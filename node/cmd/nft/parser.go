package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// command is one parsed nft command (`add chain ip kube-proxy services`).
// Rule bodies and set elements stay as tokens here: their values can only be
// typed once the sets they refer to are known (see apply.go and rule.go).
type command struct {
	verb   string // add, create, insert, replace, delete, destroy, flush, list
	object string // table, chain, rule, set, map, element, counter, ruleset, counters
	family string // ip, ip6, inet
	table  string
	name   string  // chain, set, map or counter name; the chain of a rule
	handle *uint64 // `handle N`
	index  *uint64 // `index N` (rules)
	line   int     // source line of the command's first token
	src    string  // the command's source text, for error messages

	comment   *string // table, chain, set, map, counter comment
	flags     []string
	chainSpec *chainSpec
	setSpec   *setSpec
	elements  []elementSpec
	rule      []token // rule statements (including a trailing `comment "..."`)
}

// chainSpec is the `{ type T hook H priority P ; policy P ; }` of a base chain.
type chainSpec struct {
	typ, hook, device string
	priority          int32
	policy            string
}

// setSpec is the body of `add set|map`.
type setSpec struct {
	key       keyType
	data      keyType // maps only
	flags     []string
	timeout   time.Duration
	size      uint32
	autoMerge bool
}

// elementSpec is one `key [comment "c"] [: value]` of an element command, as
// words; `.` separates concatenated components.
type elementSpec struct {
	key     []string
	value   []string
	comment *string
	pos     token
}

// parseError is a syntax error with its position.
type parseError struct {
	tok token
	msg string
}

func (e *parseError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.tok.line, e.tok.col, e.msg)
}

// parser walks the token list of a whole input.
type parser struct {
	toks []token
	pos  int
	src  []string // input lines, for command source text
}

// parseInput parses a whole nft script (`nft -f`) into commands.
func parseInput(src string) ([]*command, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: strings.Split(src, "\n")}
	var cmds []*command
	for {
		p.skipSeparators()
		if p.peek().kind == tokEOF {
			return cmds, nil
		}
		cmd, err := p.parseCommand()
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, cmd)
	}
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return &parseError{tok: t, msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSeparators() {
	for k := p.peek().kind; k == tokNewline || k == tokSemicolon; k = p.peek().kind {
		p.next()
	}
}

// skipNewlines skips newlines inside braces, where they are plain whitespace.
func (p *parser) skipNewlines() {
	for p.peek().kind == tokNewline {
		p.next()
	}
}

func (p *parser) atEnd() bool {
	k := p.peek().kind
	return k == tokNewline || k == tokSemicolon || k == tokEOF
}

func (p *parser) word(what string) (string, error) {
	t := p.next()
	if t.kind != tokWord {
		return "", p.errorf(t, "syntax error, expected %s, got %s", what, t)
	}
	return t.text, nil
}

func (p *parser) expectWord(w string) error {
	t := p.next()
	if t.kind != tokWord || t.text != w {
		return p.errorf(t, "syntax error, expected %q, got %s", w, t)
	}
	return nil
}

func (p *parser) expect(kind tokenKind, what string) error {
	t := p.next()
	if t.kind != kind {
		return p.errorf(t, "syntax error, expected %s, got %s", what, t)
	}
	return nil
}

func (p *parser) uint(what string) (uint64, error) {
	t := p.next()
	v, err := strconv.ParseUint(t.text, 10, 64)
	if t.kind != tokWord || err != nil {
		return 0, p.errorf(t, "syntax error, expected %s, got %s", what, t)
	}
	return v, nil
}

func (p *parser) str(what string) (string, error) {
	t := p.next()
	if t.kind != tokString && t.kind != tokWord {
		return "", p.errorf(t, "syntax error, expected %s, got %s", what, t)
	}
	return t.text, nil
}

var families = map[string]bool{"ip": true, "ip6": true, "inet": true, "arp": false, "bridge": false, "netdev": false}

// family consumes an optional family word; nft defaults to "ip".
func (p *parser) family() (string, error) {
	t := p.peek()
	if t.kind == tokWord {
		if ok, known := families[t.text]; known {
			p.next()
			if !ok {
				return "", p.errorf(t, "family %q is not supported (only ip, ip6 and inet)", t.text)
			}
			return t.text, nil
		}
	}
	return "ip", nil
}

// handleOrName parses `handle N` or a name.
func (p *parser) handleOrName(cmd *command, what string) error {
	if t := p.peek(); t.kind == tokWord && t.text == "handle" {
		p.next()
		h, err := p.uint("handle")
		if err != nil {
			return err
		}
		cmd.handle = &h
		return nil
	}
	name, err := p.str(what)
	cmd.name = name
	return err
}

func (p *parser) parseCommand() (*command, error) {
	first := p.peek()
	cmd := &command{line: first.line}
	if first.line-1 < len(p.src) {
		cmd.src = p.src[first.line-1]
	}
	verb, err := p.word("command")
	if err != nil {
		return nil, err
	}
	switch verb {
	case "add", "create", "insert", "replace", "delete", "destroy", "flush", "list", "reset":
	default:
		return nil, p.errorf(first, "syntax error, unexpected %q (supported commands: add, create, insert, replace, delete, destroy, flush, list)", verb)
	}
	cmd.verb = verb
	objTok := p.peek()
	obj, err := p.word("object type")
	if err != nil {
		return nil, err
	}
	cmd.object = obj
	if verb == "list" {
		return cmd, p.parseList(cmd)
	}
	if verb == "reset" {
		return nil, p.errorf(first, "\"reset\" is not supported")
	}
	switch obj {
	case "table":
		err = p.parseTable(cmd)
	case "chain":
		err = p.parseChain(cmd)
	case "rule":
		err = p.parseRule(cmd)
	case "set", "map":
		err = p.parseSet(cmd)
	case "element":
		err = p.parseElements(cmd)
	case "counter":
		err = p.parseCounter(cmd)
	default:
		err = p.errorf(objTok, "syntax error, unsupported object %q", obj)
	}
	if err != nil {
		return nil, err
	}
	if !p.atEnd() {
		return nil, p.errorf(p.peek(), "syntax error, unexpected %s", p.peek())
	}
	return cmd, nil
}

func (p *parser) verbAllowed(cmd *command, verbs ...string) error {
	for _, v := range verbs {
		if cmd.verb == v {
			return nil
		}
	}
	return fmt.Errorf("line %d: %q is not supported for %ss", cmd.line, cmd.verb, cmd.object)
}

func (p *parser) parseTable(cmd *command) error {
	if err := p.verbAllowed(cmd, "add", "create", "delete", "destroy", "flush"); err != nil {
		return err
	}
	var err error
	if cmd.family, err = p.family(); err != nil {
		return err
	}
	if err := p.handleOrName(cmd, "table name"); err != nil {
		return err
	}
	cmd.table = cmd.name
	if p.peek().kind != tokLBrace {
		return nil
	}
	if cmd.verb != "add" && cmd.verb != "create" {
		return p.errorf(p.peek(), "syntax error, unexpected \"{\"")
	}
	return p.block(func(key token) error {
		switch key.text {
		case "comment":
			c, err := p.str("comment")
			cmd.comment = &c
			return err
		case "flags":
			flags, err := p.list("table flag")
			cmd.flags = flags
			return err
		}
		return p.errorf(key, "unsupported table property %q", key.text)
	})
}

// block parses `{ prop ... ; prop ... ; }`, calling fn with each property's
// first word.
func (p *parser) block(fn func(key token) error) error {
	if err := p.expect(tokLBrace, "\"{\""); err != nil {
		return err
	}
	for {
		p.skipNewlines()
		t := p.next()
		switch t.kind {
		case tokRBrace:
			return nil
		case tokSemicolon:
			continue
		case tokWord:
			if err := fn(t); err != nil {
				return err
			}
			p.skipNewlines()
			if k := p.peek().kind; k != tokSemicolon && k != tokRBrace {
				return p.errorf(p.peek(), "syntax error, expected \";\", got %s", p.peek())
			}
		default:
			return p.errorf(t, "syntax error, unexpected %s", t)
		}
	}
}

// list parses `a,b,c`.
func (p *parser) list(what string) ([]string, error) {
	var out []string
	for {
		w, err := p.word(what)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
		if p.peek().kind != tokComma {
			return out, nil
		}
		p.next()
	}
}

// wordsUntilSemicolon collects words up to (not including) `;` or `}`.
func (p *parser) wordsUntilSemicolon() []string {
	var out []string
	for p.peek().kind == tokWord {
		out = append(out, p.next().text)
	}
	return out
}

func (p *parser) tableAndName(cmd *command, what string) error {
	var err error
	if cmd.family, err = p.family(); err != nil {
		return err
	}
	if cmd.table, err = p.str("table name"); err != nil {
		return err
	}
	return p.handleOrName(cmd, what)
}

// priorities are nft's named base chain priorities (ip, ip6 and inet families).
var priorities = map[string]int32{"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}

func parsePriority(s string) (int32, error) {
	if v, err := strconv.ParseInt(s, 10, 32); err == nil {
		return int32(v), nil
	}
	name, offset := s, int64(0)
	if i := strings.IndexAny(s, "+-"); i > 0 {
		v, err := strconv.ParseInt(s[i:], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid priority %q", s)
		}
		name, offset = s[:i], v
	}
	base, ok := priorities[name]
	if !ok {
		return 0, fmt.Errorf("invalid priority %q", s)
	}
	return base + int32(offset), nil
}

func (p *parser) parseChain(cmd *command) error {
	if err := p.verbAllowed(cmd, "add", "create", "delete", "destroy", "flush"); err != nil {
		return err
	}
	if err := p.tableAndName(cmd, "chain name"); err != nil {
		return err
	}
	if p.peek().kind != tokLBrace {
		return nil
	}
	if cmd.verb != "add" && cmd.verb != "create" {
		return p.errorf(p.peek(), "syntax error, unexpected \"{\"")
	}
	return p.block(func(key token) error {
		switch key.text {
		case "type":
			spec := &chainSpec{}
			var err error
			if spec.typ, err = p.word("chain type"); err != nil {
				return err
			}
			if err := p.expectWord("hook"); err != nil {
				return err
			}
			if spec.hook, err = p.word("hook"); err != nil {
				return err
			}
			if t := p.peek(); t.kind == tokWord && t.text == "device" {
				return p.errorf(t, "chain devices (netdev hooks) are not supported")
			}
			if err := p.expectWord("priority"); err != nil {
				return err
			}
			prioTok := p.peek()
			words := p.wordsUntilSemicolon()
			if spec.priority, err = parsePriority(strings.Join(words, "")); err != nil {
				return p.errorf(prioTok, "%v", err)
			}
			cmd.chainSpec = spec
			return nil
		case "policy":
			if cmd.chainSpec == nil {
				return p.errorf(key, "policy is only allowed on base chains")
			}
			pol, err := p.word("policy")
			if pol != "accept" && pol != "drop" && err == nil {
				return p.errorf(key, "invalid policy %q", pol)
			}
			cmd.chainSpec.policy = pol
			return err
		case "comment":
			c, err := p.str("comment")
			cmd.comment = &c
			return err
		}
		return p.errorf(key, "unsupported chain property %q", key.text)
	})
}

func (p *parser) parseRule(cmd *command) error {
	if err := p.verbAllowed(cmd, "add", "insert", "replace", "delete", "destroy"); err != nil {
		return err
	}
	var err error
	if cmd.family, err = p.family(); err != nil {
		return err
	}
	if cmd.table, err = p.str("table name"); err != nil {
		return err
	}
	if cmd.name, err = p.str("chain name"); err != nil {
		return err
	}
	if t := p.peek(); t.kind == tokWord {
		switch t.text {
		case "handle", "position":
			p.next()
			h, err := p.uint("handle")
			if err != nil {
				return err
			}
			cmd.handle = &h
		case "index":
			p.next()
			i, err := p.uint("index")
			if err != nil {
				return err
			}
			cmd.index = &i
		}
	}
	switch cmd.verb {
	case "delete", "destroy":
		if cmd.handle == nil {
			return fmt.Errorf("line %d: %s rule needs a handle", cmd.line, cmd.verb)
		}
		return nil
	case "replace":
		if cmd.handle == nil {
			return fmt.Errorf("line %d: replace rule needs a handle", cmd.line)
		}
	}
	// The rule body runs to the end of the command; braces may span lines.
	depth := 0
	for {
		t := p.peek()
		if t.kind == tokEOF || (depth == 0 && (t.kind == tokNewline || t.kind == tokSemicolon)) {
			break
		}
		p.next()
		switch t.kind {
		case tokLBrace:
			depth++
		case tokRBrace:
			depth--
		case tokNewline:
			continue
		}
		cmd.rule = append(cmd.rule, t)
	}
	if len(cmd.rule) == 0 {
		return fmt.Errorf("line %d: rule has no statements", cmd.line)
	}
	return nil
}

func (p *parser) parseSet(cmd *command) error {
	if err := p.verbAllowed(cmd, "add", "create", "delete", "destroy", "flush"); err != nil {
		return err
	}
	if err := p.tableAndName(cmd, cmd.object+" name"); err != nil {
		return err
	}
	if cmd.verb != "add" && cmd.verb != "create" {
		return nil
	}
	spec := &setSpec{}
	cmd.setSpec = spec
	err := p.block(func(key token) error {
		switch key.text {
		case "type":
			words := p.wordsUntilSemicolon()
			keyWords, dataWords := words, []string(nil)
			for i, w := range words {
				if w == ":" {
					keyWords, dataWords = words[:i], words[i+1:]
				}
			}
			var err error
			if spec.key, err = parseKeyType(keyWords); err != nil {
				return p.errorf(key, "%v", err)
			}
			if (cmd.object == "map") != (dataWords != nil) {
				return p.errorf(key, "a map needs `type KEY : VALUE`, a set only `type KEY`")
			}
			if dataWords != nil {
				if spec.data, err = parseKeyType(dataWords); err != nil {
					return p.errorf(key, "%v", err)
				}
			}
			return nil
		case "typeof":
			return p.errorf(key, "\"typeof\" set declarations are not supported, use \"type\"")
		case "flags":
			flags, err := p.list("set flag")
			for _, f := range flags {
				switch f {
				case "constant", "dynamic", "interval", "timeout":
				default:
					return p.errorf(key, "unsupported set flag %q", f)
				}
			}
			spec.flags = append(spec.flags, flags...)
			return err
		case "timeout":
			w, err := p.word("timeout")
			if err != nil {
				return err
			}
			d, err := parseDuration(w)
			if err != nil {
				return p.errorf(key, "%v", err)
			}
			spec.timeout = d
			return nil
		case "size":
			n, err := p.uint("size")
			spec.size = uint32(n)
			return err
		case "auto-merge":
			spec.autoMerge = true
			return nil
		case "comment":
			c, err := p.str("comment")
			cmd.comment = &c
			return err
		}
		return p.errorf(key, "unsupported %s property %q", cmd.object, key.text)
	})
	if err == nil && spec.key == nil {
		return fmt.Errorf("line %d: %s %s has no type", cmd.line, cmd.object, cmd.name)
	}
	return err
}

// parseDuration parses nft durations: "10800s", "3h", "1d2h", "500ms".
func parseDuration(s string) (time.Duration, error) {
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return time.Duration(v) * time.Second, nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		n, err := strconv.ParseUint(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[rest[i:j]]
		if unit == 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		total += time.Duration(n) * unit
		rest = rest[j:]
	}
	return total, nil
}

func (p *parser) parseElements(cmd *command) error {
	if err := p.verbAllowed(cmd, "add", "create", "delete", "destroy"); err != nil {
		return err
	}
	var err error
	if cmd.family, err = p.family(); err != nil {
		return err
	}
	if cmd.table, err = p.str("table name"); err != nil {
		return err
	}
	if cmd.name, err = p.str("set name"); err != nil {
		return err
	}
	if err := p.expect(tokLBrace, "\"{\""); err != nil {
		return err
	}
	for {
		p.skipNewlines()
		start := p.peek()
		if start.kind == tokRBrace {
			p.next()
			break
		}
		el := elementSpec{pos: start}
		inValue := false
		for {
			p.skipNewlines()
			t := p.peek()
			if t.kind == tokComma || t.kind == tokRBrace {
				break
			}
			p.next()
			switch {
			case t.kind == tokWord && t.text == "comment" && !inValue:
				c, err := p.str("comment")
				if err != nil {
					return err
				}
				el.comment = &c
			case t.kind == tokWord && t.text == ":" && !inValue:
				inValue = true
			case t.kind == tokWord && inValue:
				el.value = append(el.value, t.text)
			case t.kind == tokWord:
				el.key = append(el.key, t.text)
			default:
				return p.errorf(t, "syntax error, unexpected %s in element", t)
			}
		}
		if len(el.key) == 0 {
			return p.errorf(start, "syntax error, empty element")
		}
		if inValue && len(el.value) == 0 {
			return p.errorf(start, "syntax error, element has no value after \":\"")
		}
		cmd.elements = append(cmd.elements, el)
		if p.peek().kind == tokComma {
			p.next()
		}
	}
	if len(cmd.elements) == 0 {
		return fmt.Errorf("line %d: no elements", cmd.line)
	}
	return nil
}

func (p *parser) parseCounter(cmd *command) error {
	if err := p.verbAllowed(cmd, "add", "create", "delete", "destroy"); err != nil {
		return err
	}
	if err := p.tableAndName(cmd, "counter name"); err != nil {
		return err
	}
	if p.peek().kind != tokLBrace {
		return nil
	}
	return p.block(func(key token) error {
		switch key.text {
		case "packets":
			if _, err := p.uint("packets"); err != nil {
				return err
			}
			if err := p.expectWord("bytes"); err != nil {
				return err
			}
			_, err := p.uint("bytes")
			return err
		case "comment":
			c, err := p.str("comment")
			cmd.comment = &c
			return err
		}
		return p.errorf(key, "unsupported counter property %q", key.text)
	})
}

// parseList parses the list commands knftables and people use:
// `list ruleset [family]`, `list table F T`, `list chain F T C`,
// `list set|map F T S`, `list counters [table F T]`, `list tables [F]`.
func (p *parser) parseList(cmd *command) error {
	var err error
	switch cmd.object {
	case "ruleset", "tables":
		if !p.atEnd() {
			cmd.family, err = p.family()
		}
	case "table":
		if cmd.family, err = p.family(); err == nil {
			cmd.table, err = p.str("table name")
		}
	case "chain", "set", "map":
		if cmd.family, err = p.family(); err == nil {
			if cmd.table, err = p.str("table name"); err == nil {
				cmd.name, err = p.str(cmd.object + " name")
			}
		}
	case "counters":
		if !p.atEnd() {
			if err = p.expectWord("table"); err == nil {
				if cmd.family, err = p.family(); err == nil {
					cmd.table, err = p.str("table name")
				}
			}
		}
	default:
		return fmt.Errorf("line %d: \"list %s\" is not supported", cmd.line, cmd.object)
	}
	if err == nil && !p.atEnd() {
		err = p.errorf(p.peek(), "syntax error, unexpected %s", p.peek())
	}
	return err
}
