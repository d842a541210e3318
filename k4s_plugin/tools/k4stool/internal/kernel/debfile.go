//go:build k4s_kernel

package kernel

import (
	"archive/tar"
	"io"
)

// DebFile returns the control fields of the Debian package at debPath and the
// contents of the regular file name ("usr/lib/...", relative to the package
// root) of its data.tar, nil if the package has no such file: how other steps
// (the UEFI stub of `k4stool uefi-stub`) read one file of a pinned package.
func DebFile(debPath, name string) (map[string]string, []byte, error) {
	control, err := debControl(debPath)
	if err != nil {
		return nil, nil, err
	}
	var data []byte
	err = walkData(debPath, func(n string, _ *tar.Header, r io.Reader) error {
		if n != name || data != nil {
			return nil
		}
		b, err := io.ReadAll(r)
		data = b
		return err
	})
	return control, data, err
}
