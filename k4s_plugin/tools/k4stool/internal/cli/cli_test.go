//go:build !k4s_download

package cli

// k4stool's own checks on the values it is given (defence in depth behind the
// Pants rules' field checks): no value becomes a flag or a path outside the
// working directory. Run by tests/integration/test_bad_input.py (`go test ./k4stool/...`).

import (
	"testing"
)

func TestCheckPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		ok      bool
	}{
		{"github.com/u-root/u-root/cmds/core/ls", true},
		{"github.com/u-root/u-root/cmds/core/*", true},
		{"-github.com/u-root/u-root/cmds/core/bind", true},
		{"go.etcd.io/etcd/server/v3", true},
		{"-out=/tmp/x/modules.tar", false},
		{"-gomod=/etc", false},
		{"-dlcache=/tmp", false},
		{"--", false},
		{"--out", false},
		{"-", false},
		{"", false},
		{"/abs/path", false},
		{"a/../b", false},
		{"a//b", false},
		{"./rel", false},
		{"a/b/", false},
		{"with space", false},
	} {
		err := CheckPatterns([]string{tc.pattern})
		if tc.ok && err != nil || !tc.ok && Code(err) != "E_BAD_PATTERN" {
			t.Errorf("checkPatterns(%q) = %v, want ok=%v", tc.pattern, err, tc.ok)
		}
	}
}
