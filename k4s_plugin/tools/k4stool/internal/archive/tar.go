package archive

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// PackTree writes dir into a deterministic tar file: entries sorted by path,
// mtime 0, uid/gid 0, no user/group names, modes normalized to 0755 (dirs
// and executables) or 0644. keep, if non-nil, selects which regular files
// are packed (paths relative to dir, slash-separated).
func PackTree(dir, out string, keep func(rel string) bool) (int, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.Type().IsRegular() && keep != nil && !keep(rel) {
			return nil
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return PackPaths(dir, out, paths)
}

// PackFiles packs the given files (relative to dir, slash-separated) and
// their parent directories, like packTree.
func PackFiles(dir, out string, files map[string]bool) (int, error) {
	all := map[string]bool{}
	for f := range files {
		for p := f; p != "." && p != "/" && !all[p]; p = path.Dir(p) {
			all[p] = true
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	return PackPaths(dir, out, paths)
}

func PackPaths(dir, out string, paths []string) (int, error) {
	sort.Strings(paths)
	f, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	for _, rel := range paths {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		fi, err := os.Lstat(p)
		if err != nil {
			return 0, err
		}
		hdr := &tar.Header{Name: rel, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, rel+"/", 0o755
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return 0, err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), 0o644
			if fi.Mode()&0o111 != 0 {
				hdr.Mode = 0o755
			}
		default:
			return 0, fmt.Errorf("%s: unsupported file type %v", p, fi.Mode())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return 0, err
		}
		if hdr.Typeflag == tar.TypeReg {
			src, err := os.Open(p)
			if err != nil {
				return 0, err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return 0, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return len(paths), f.Close()
}

// UnpackTree extracts a tar written by packTree into dir.
func UnpackTree(tarPath, dir string) error { return UnpackTreeKeep(tarPath, dir, nil) }

// UnpackTreeKeep extracts a tar written by packTree into dir; keep, if
// non-nil, selects the files and symlinks extracted (entry names, slash-separated).
func UnpackTreeKeep(tarPath, dir string, keep func(name string) bool) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	// Symlinks this tar created: no later entry may be written through one
	// (a link to /etc followed by a file under it would write outside dir).
	links := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tarPath, err)
		}
		name := filepath.Clean(filepath.FromSlash(hdr.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%s: entry %q escapes the destination", tarPath, hdr.Name)
		}
		for d := filepath.Dir(name); d != "." && d != string(filepath.Separator); d = filepath.Dir(d) {
			if links[d] {
				return fmt.Errorf("%s: entry %q is under the symlink %q", tarPath, hdr.Name, d)
			}
		}
		if links[name] {
			return fmt.Errorf("%s: entry %q replaces a symlink", tarPath, hdr.Name)
		}
		if keep != nil && hdr.Typeflag != tar.TypeDir && !keep(filepath.ToSlash(name)) {
			continue
		}
		p := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				return err
			}
			links[name] = true
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(hdr.Mode)&0o777)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported entry type %c for %q", tarPath, hdr.Typeflag, hdr.Name)
		}
	}
}
