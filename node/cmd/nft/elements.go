package main

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// encodeConcat encodes the words of a (possibly concatenated) value, e.g.
// ["10.0.0.1", ".", "tcp", ".", "80"], for type k. Components of a
// concatenation are padded to 32-bit registers, as in the kernel.
func encodeConcat(k keyType, words []string) ([]byte, error) {
	parts, err := splitConcat(words, len(k))
	if err != nil {
		return nil, err
	}
	if len(k) == 1 {
		return k[0].parse(parts[0])
	}
	var out []byte
	for i, t := range k {
		b, err := t.parse(parts[i])
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		out = append(out, make([]byte, regSize(len(b))-len(b))...)
	}
	return out, nil
}

// splitConcat splits `a . b . c` into its n components.
func splitConcat(words []string, n int) ([]string, error) {
	var parts []string
	for i, w := range words {
		if i%2 == 1 {
			if w != "." {
				return nil, fmt.Errorf("syntax error, expected \".\" in %q", strings.Join(words, " "))
			}
			continue
		}
		parts = append(parts, w)
	}
	if len(parts) != n || len(words)%2 == 0 {
		return nil, fmt.Errorf("value %q does not match a %d-part key", strings.Join(words, " "), n)
	}
	return parts, nil
}

// buildElements converts parsed elements into netlink set elements for a set
// with key type key and (for maps) data type data. Interval sets get nft's
// encoding: each range is a start element and an end element one past its
// last value (flagged INTERVAL_END); anonymous interval sets also start with
// an end element at zero, as nft sends them.
func buildElements(key, data keyType, interval, anonymous bool, specs []elementSpec) ([]nftables.SetElement, error) {
	if !interval {
		out := make([]nftables.SetElement, 0, len(specs))
		for _, s := range specs {
			k, err := encodeConcat(key, s.key)
			if err != nil {
				return nil, err
			}
			el := nftables.SetElement{Key: k}
			if err := setElementValue(&el, data, s); err != nil {
				return nil, err
			}
			out = append(out, el)
		}
		return out, nil
	}
	if len(key) != 1 {
		return nil, fmt.Errorf("interval sets with concatenated keys are not supported")
	}
	type span struct {
		r    valueRange
		spec elementSpec
	}
	var spans []span
	for _, s := range specs {
		if len(s.key) != 1 {
			return nil, fmt.Errorf("invalid interval element %q", strings.Join(s.key, " "))
		}
		r, err := key[0].parseRange(s.key[0])
		if err != nil {
			return nil, err
		}
		if bytes.Compare(r.first, r.last) > 0 {
			return nil, fmt.Errorf("invalid range %q", s.key[0])
		}
		spans = append(spans, span{r: r, spec: s})
	}
	sort.Slice(spans, func(i, j int) bool { return bytes.Compare(spans[i].r.first, spans[j].r.first) < 0 })
	// Merge overlapping and adjacent ranges (nft's auto-merge for constant sets).
	if data == nil {
		var merged []span
		for _, s := range spans {
			if n := len(merged); n > 0 {
				prev := &merged[n-1]
				next, overflow := increment(prev.r.last)
				if overflow || bytes.Compare(s.r.first, next) <= 0 {
					if bytes.Compare(s.r.last, prev.r.last) > 0 {
						prev.r.last = s.r.last
					}
					continue
				}
			}
			merged = append(merged, s)
		}
		spans = merged
	}
	var out []nftables.SetElement
	zero := make([]byte, key[0].size)
	if anonymous && len(spans) > 0 && !bytes.Equal(spans[0].r.first, zero) {
		out = append(out, nftables.SetElement{Key: zero, IntervalEnd: true})
	}
	for i, s := range spans {
		if i > 0 && bytes.Compare(s.r.first, spans[i-1].r.last) <= 0 {
			return nil, fmt.Errorf("overlapping intervals in map")
		}
		el := nftables.SetElement{Key: s.r.first}
		if err := setElementValue(&el, data, s.spec); err != nil {
			return nil, err
		}
		out = append(out, el)
		if end, overflow := increment(s.r.last); !overflow {
			out = append(out, nftables.SetElement{Key: end, IntervalEnd: true})
		}
	}
	return out, nil
}

// setElementValue fills in the comment and (for maps) the value of el.
func setElementValue(el *nftables.SetElement, data keyType, s elementSpec) error {
	if s.comment != nil {
		if len(*s.comment) > 128 {
			return fmt.Errorf("comment too long (%d > 128 bytes)", len(*s.comment))
		}
		el.Comment = *s.comment
	}
	switch {
	case data == nil && len(s.value) > 0:
		return fmt.Errorf("set elements cannot have values")
	case data == nil || len(s.value) == 0:
		// Set element, or map key (delete).
		return nil
	case data.isVerdict():
		i := 1
		v, err := parseVerdict(s.value[0], func() (string, bool) {
			if i < len(s.value) {
				i++
				return s.value[i-1], true
			}
			return "", false
		})
		if err != nil {
			return err
		}
		if i != len(s.value) {
			return fmt.Errorf("syntax error after verdict in %q", strings.Join(s.value, " "))
		}
		el.VerdictData = v
		return nil
	}
	v, err := encodeConcat(data, s.value)
	el.Val = v
	return err
}

// verdictName names a verdict code (NFTA_VERDICT_CODE) as nft prints it.
func verdictName(kind int32, chain string) (string, *expr.Verdict) {
	names := map[expr.VerdictKind]string{
		expr.VerdictAccept: "accept", expr.VerdictDrop: "drop", expr.VerdictReturn: "return",
		expr.VerdictContinue: "continue", expr.VerdictJump: "jump", expr.VerdictGoto: "goto",
	}
	v := &expr.Verdict{Kind: expr.VerdictKind(kind), Chain: chain}
	return names[v.Kind], v
}
