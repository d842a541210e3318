package main

import (
	"fmt"
	"strings"
)

// tokenKind classifies lexer tokens. nft's grammar is context sensitive (an
// IPv6 address, `10.0.0.1:80` and a chain name `svc/ns/tcp/p80` are all one
// word), so the lexer only separates words, quoted strings and the few
// characters that always delimit: braces, `;`, `,` and newlines.
type tokenKind int

const (
	tokWord tokenKind = iota
	tokString
	tokLBrace
	tokRBrace
	tokSemicolon
	tokComma
	tokNewline
	tokEOF
)

// token is one lexeme with its position (1-based line and column).
type token struct {
	kind tokenKind
	text string
	line int
	col  int
}

func (t token) String() string {
	switch t.kind {
	case tokString:
		return fmt.Sprintf("%q", t.text)
	case tokNewline:
		return "end of line"
	case tokEOF:
		return "end of input"
	}
	return fmt.Sprintf("%q", t.text)
}

// lex splits nft input into tokens. `#` starts a comment that runs to the end
// of the line; `\` before a newline joins lines.
func lex(src string) ([]token, error) {
	var toks []token
	line, col := 1, 1
	i := 0
	emit := func(kind tokenKind, text string, l, c int) {
		toks = append(toks, token{kind: kind, text: text, line: l, col: c})
	}
	for i < len(src) {
		ch := src[i]
		switch {
		case ch == '\n':
			emit(tokNewline, "\n", line, col)
			i++
			line, col = line+1, 1
		case ch == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
			line, col = line+1, 1
		case ch == ' ' || ch == '\t' || ch == '\r':
			i++
			col++
		case ch == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case ch == '{' || ch == '}' || ch == ';' || ch == ',':
			kind := map[byte]tokenKind{'{': tokLBrace, '}': tokRBrace, ';': tokSemicolon, ',': tokComma}[ch]
			emit(kind, string(ch), line, col)
			i++
			col++
		case ch == '"':
			startCol := col
			var b strings.Builder
			i++
			col++
			for {
				if i >= len(src) || src[i] == '\n' {
					return nil, fmt.Errorf("%d:%d: unterminated string", line, startCol)
				}
				if src[i] == '\\' && i+1 < len(src) && (src[i+1] == '"' || src[i+1] == '\\') {
					b.WriteByte(src[i+1])
					i += 2
					col += 2
					continue
				}
				if src[i] == '"' {
					i++
					col++
					break
				}
				b.WriteByte(src[i])
				i++
				col++
			}
			emit(tokString, b.String(), line, startCol)
		default:
			start, startCol := i, col
			for i < len(src) && !strings.ContainsRune(" \t\r\n{};,\"#", rune(src[i])) {
				i++
				col++
			}
			word := src[start:i]
			// "0:" in `{ 0: goto x }`: a trailing colon separates a map key
			// from its value, unless the word is an IPv6 address like "fd00::".
			if len(word) > 1 && strings.HasSuffix(word, ":") && !strings.HasSuffix(word, "::") {
				emit(tokWord, word[:len(word)-1], line, startCol)
				emit(tokWord, ":", line, col-1)
				continue
			}
			emit(tokWord, word, line, startCol)
		}
	}
	emit(tokEOF, "", line, col)
	return toks, nil
}
