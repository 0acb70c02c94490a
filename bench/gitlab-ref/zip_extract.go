package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zip"
	"golang.org/x/sync/errgroup"
)

// writerPool: fastzip writes every extracted file through a pooled 32 KiB bufio.Writer.
var writerPool = sync.Pool{New: func() interface{} { return bufio.NewWriterSize(nil, 32<<10) }}

// extractZip follows fastzip's Extractor: regular files in parallel (at most one per CPU), every
// parent made with MkdirAll as found; then the symlinks (after all files, so that no file is
// written through one); then the directories' modes and mtimes. Paths outside DIR are refused by
// a string prefix check on the joined path, as fastzip does.
func extractZip(ctx context.Context, r io.ReaderAt, size int64, chroot string) (err error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return err
	}
	zr.RegisterDecompressor(zip.Deflate, pooledInflate())
	concurrency, err := workers("FASTZIP_EXTRACTOR_CONCURRENCY")
	if err != nil {
		return err
	}
	limiter := make(chan struct{}, concurrency)
	g, ctx := errgroup.WithContext(ctx)
	defer func() {
		if werr := g.Wait(); werr != nil {
			err = werr
		}
	}()

	for _, file := range zr.File {
		if file.Mode()&irregularModes != 0 {
			continue
		}
		path, err := entryPath(chroot, file.Name)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case file.Mode()&os.ModeSymlink != 0:
			continue
		case file.Mode().IsDir():
			if err := os.Mkdir(path, 0o777); err != nil && !os.IsExist(err) {
				return err
			}
		default:
			limiter <- struct{}{}
			file := file
			g.Go(func() error {
				defer func() { <-limiter }()
				if err := writeZipFile(path, file); err != nil {
					return err
				}
				return zipMetadata(path, file)
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}

	for _, file := range zr.File {
		if file.Mode()&os.ModeSymlink == 0 {
			continue
		}
		path, err := filepath.Abs(filepath.Join(chroot, file.Name))
		if err != nil {
			return err
		}
		if err := zipSymlink(path, file); err != nil {
			return err
		}
	}
	for _, file := range zr.File {
		if !file.Mode().IsDir() {
			continue
		}
		path, err := filepath.Abs(filepath.Join(chroot, file.Name))
		if err != nil {
			return err
		}
		if err := zipMetadata(path, file); err != nil {
			return err
		}
	}
	return nil
}

// writeZipFile removes whatever is at path first (a symlink there is replaced, not followed).
func writeZipFile(path string, file *zip.File) (err error) {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	r, err := file.Open()
	if err != nil {
		return err
	}
	defer closeInto(r, &err)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return err
	}
	defer closeInto(f, &err)
	bw := writerPool.Get().(*bufio.Writer)
	defer writerPool.Put(bw)
	bw.Reset(f)
	if _, err = bw.ReadFrom(r); err != nil {
		return err
	}
	return bw.Flush()
}

func zipSymlink(path string, file *zip.File) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	r, err := file.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	target, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := os.Symlink(string(target), path); err != nil {
		return err
	}
	return zipMetadata(path, file)
}

// zipMetadata: mtime (from the extended timestamp, else the DOS time), mode (not on a symlink:
// Linux has no lchmod), owner from the Info-ZIP Unix field with its error ignored, as GitLab
// passes fastzip no chown error handler.
func zipMetadata(path string, file *zip.File) error {
	fields, err := extraFields(file.Extra)
	if err != nil {
		return err
	}
	if err := lchtimes(path, time.Now(), file.Modified); err != nil {
		return err
	}
	if err := lchmod(path, file.Mode()); err != nil {
		return err
	}
	if field, ok := fields[infoZIPUnixID]; ok {
		uid, gid, err := owner(field)
		if err != nil {
			return err
		}
		_ = os.Lchown(path, uid, gid)
	}
	return nil
}

type inflater struct {
	pool *sync.Pool
	buf  *bufio.Reader
	io.ReadCloser
}

func (fr *inflater) Close() error {
	err := fr.ReadCloser.Close()
	fr.pool.Put(fr)
	return err
}

// pooledInflate is fastzip's FlateDecompressor: klauspost inflaters reused, each reading through
// a 32 KiB bufio.Reader.
func pooledInflate() zip.Decompressor {
	pool := &sync.Pool{}
	pool.New = func() interface{} {
		return &inflater{pool, bufio.NewReaderSize(nil, 32<<10), flate.NewReader(nil)}
	}
	return func(r io.Reader) io.ReadCloser {
		fr := pool.Get().(*inflater)
		fr.buf.Reset(r)
		fr.ReadCloser.(flate.Resetter).Reset(fr.buf, nil)
		return fr
	}
}

func closeInto(c io.Closer, err *error) {
	if cerr := c.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
