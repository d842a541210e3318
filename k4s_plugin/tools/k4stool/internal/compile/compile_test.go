//go:build !k4s_download

package compile

// k4stool's own checks on the values it is given (defence in depth behind the
// Pants rules' field checks): no value becomes a flag or a path outside the
// working directory. Run by tests/integration/test_bad_input.py (`go test ./k4stool/...`).

import (
	"testing"

	"k4s.dev/tools/k4stool/internal/cli"
)

func TestCheckLdflags(t *testing.T) {
	for _, tc := range []struct {
		flags string
		ok    bool
	}{
		{"-s -w", true},
		{"-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2 -X main.v=1", true},
		{"", true},
		{"-o /tmp/x/bb", false},
		{"-s -w -o /tmp/x/bb", false},
		{"-tmpdir /tmp/x", false},
		{"-cpuprofile=/tmp/x", false},
		{"-memprofile /tmp/x", false},
		{"-X", false},
		{"-X notavar", false},
		{"-X a.b='c'", false},
		{"-linkmode=external", false},
		{"-extldflags=-static", false},
	} {
		err := checkLdflags(tc.flags)
		if tc.ok && err != nil || !tc.ok && cli.Code(err) != "E_LDFLAGS" {
			t.Errorf("checkLdflags(%q) = %v, want ok=%v", tc.flags, err, tc.ok)
		}
	}
}
