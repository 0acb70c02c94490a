package main

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"
)

// archiveTarZstd follows GitLab's tarzstd archiver: names sorted, one stream, a tar header from
// tar.FileInfoHeader for each (a hard-linked file's bytes are stored again under every name: Go's
// tar never writes a type 1 link by itself), zstd with the encoder's default concurrency.
func archiveTarZstd(ctx context.Context, w io.Writer, chroot string, lvl level, files map[string]os.FileInfo) error {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)

	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstdLevel[lvl]))
	if err != nil {
		return err
	}
	// GitLab also defers zw.Close() after closing it; Debian's klauspost (1.15) then writes the
	// frame checksum a second time, which zstd refuses, so here it is closed once.
	tw := tar.NewWriter(zw)
	if err := writeTar(ctx, tw, chroot, names, files); err != nil {
		zw.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

func writeTar(ctx context.Context, tw *tar.Writer, chroot string, names []string, files map[string]os.FileInfo) error {

	for _, name := range names {
		fi := files[name]
		if fi.Mode()&irregularModes != 0 {
			continue
		}
		path, rel, err := archivePath(chroot, name)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if err := copyFileInto(tw, path); err != nil {
			return err
		}
	}
	return nil
}

func copyFileInto(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// extractTarZstd follows GitLab's tarzstd extractor, including what it does not do:
//   - it decides by hdr.FileInfo().Mode() alone, and Go reports a hard link (type 1) as a regular
//     file, so a link entry becomes an EMPTY file (its size is 0) instead of a link to its target;
//   - symlinks and directory metadata are applied after every file, in map (random) order;
//   - a symlink whose name already exists fails the extraction (os.Symlink, no remove first);
//   - a regular file is os.Create'd, following a symlink already at its path.
func extractTarZstd(ctx context.Context, r io.Reader, chroot string) error {
	zr, err := zstd.NewReader(r, zstd.WithDecoderLowmem(true))
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)

	later := map[string]*tar.Header{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		mode := hdr.FileInfo().Mode()
		if mode&irregularModes != 0 {
			continue
		}
		path, err := entryPath(chroot, hdr.Name)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case mode&os.ModeSymlink != 0:
			later[path] = hdr
		case mode.IsDir():
			later[path] = hdr
			if err := os.Mkdir(path, 0o777); err != nil && !os.IsExist(err) {
				return err
			}
		case mode.IsRegular():
			if err := createFrom(path, tr); err != nil {
				return err
			}
			if err := tarMetadata(path, hdr); err != nil {
				return err
			}
		}
	}
	for path, hdr := range later {
		if hdr.FileInfo().Mode()&os.ModeSymlink != 0 {
			if err := os.Symlink(hdr.Linkname, path); err != nil {
				return err
			}
		}
		if err := tarMetadata(path, hdr); err != nil {
			return err
		}
	}
	return nil
}

func createFrom(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func tarMetadata(path string, hdr *tar.Header) error {
	mode := hdr.FileInfo().Mode()
	if err := lchtimes(path, time.Now(), hdr.ModTime); err != nil {
		return err
	}
	if err := lchmod(path, mode); err != nil {
		return err
	}
	_ = os.Lchown(path, hdr.Uid, hdr.Gid)
	return nil
}
