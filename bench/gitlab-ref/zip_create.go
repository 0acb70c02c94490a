package main

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zip"
	"golang.org/x/sync/errgroup"
)

const irregularModes = os.ModeSocket | os.ModeDevice | os.ModeCharDevice | os.ModeNamedPipe

// readerPool: fastzip reads every file through a pooled 32 KiB bufio.Reader.
var readerPool = sync.Pool{New: func() interface{} { return bufio.NewReaderSize(nil, 32<<10) }}

// zipArchiver follows saracen/fastzip's Archiver as GitLab's fastzip archiver configures it: one
// goroutine per CPU compresses a whole file into its own staging buffer (2 MiB in memory, the rest
// in a file in a temporary stage directory), then, under the archive's lock, the compressed bytes
// are copied into the zip with CreateRaw. Directories, symlinks, empty files and Store entries are
// written under the lock directly.
type zipArchiver struct {
	zw          *zip.Writer
	chroot      string
	method      uint16
	compressors map[uint16]zip.Compressor
	mu          sync.Mutex
}

func archiveZip(ctx context.Context, w io.Writer, chroot string, lvl level, files map[string]os.FileInfo) (err error) {
	// GitLab: os.MkdirTemp(os.Getenv("ARCHIVER_STAGING_DIR"), "fastzip"), removed afterwards.
	stageDir, err := os.MkdirTemp(os.Getenv("ARCHIVER_STAGING_DIR"), "fastzip")
	if err != nil {
		return fmt.Errorf("unable to create the stage directory: %w", err)
	}
	defer os.RemoveAll(stageDir)
	concurrency, err := workers("FASTZIP_ARCHIVER_CONCURRENCY")
	if err != nil {
		return err
	}
	bufferSize := 2 << 20 // fastzip's default; FASTZIP_ARCHIVER_BUFFER_SIZE changes it
	if v := os.Getenv("FASTZIP_ARCHIVER_BUFFER_SIZE"); v != "" {
		if _, err := fmt.Sscan(v, &bufferSize); err != nil {
			return fmt.Errorf("FASTZIP_ARCHIVER_BUFFER_SIZE: %w", err)
		}
	}

	a := &zipArchiver{zw: zip.NewWriter(w), chroot: chroot, method: zip.Deflate, compressors: map[uint16]zip.Compressor{}}
	if lvl == fastest {
		a.method = zip.Store
	} else {
		a.register(zip.Deflate, pooledFlate(flateLevel[lvl]))
	}
	err = a.archive(ctx, files, concurrency, stageDir, bufferSize)
	if cerr := a.zw.Close(); err == nil {
		err = cerr
	}
	return err
}

func (a *zipArchiver) register(method uint16, c zip.Compressor) {
	a.zw.RegisterCompressor(method, c)
	a.compressors[method] = c
}

func (a *zipArchiver) archive(ctx context.Context, files map[string]os.FileInfo, concurrency int, stageDir string, bufferSize int) (err error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)

	if len(files) < concurrency {
		concurrency = len(files)
	}
	var stages *stagePool
	if concurrency > 1 {
		stages = newStagePool(stageDir, concurrency, bufferSize)
		defer func() {
			if cerr := stages.close(); err == nil {
				err = cerr
			}
		}()
	}

	g, ctx := errgroup.WithContext(ctx)
	defer func() {
		if werr := g.Wait(); werr != nil {
			err = werr
		}
	}()
	hdrs := make([]zip.FileHeader, len(names))
	for i, name := range names {
		fi := files[name]
		if fi.Mode()&irregularModes != 0 {
			continue
		}
		path, rel, err := archivePath(a.chroot, name)
		if err != nil {
			return err
		}
		hdr := &hdrs[i]
		setHeader(hdr, rel, fi)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case hdr.Mode()&os.ModeSymlink != 0:
			err = a.addSymlink(path, fi, hdr)
		case hdr.Mode().IsDir():
			a.mu.Lock()
			_, err = a.header(fi, hdr)
			a.mu.Unlock()
		default:
			if hdr.UncompressedSize64 > 0 {
				hdr.Method = a.method
			}
			if stages == nil {
				err = a.addFile(path, fi, hdr, nil)
				break
			}
			stage := stages.get()
			g.Go(func() error {
				defer stages.put(stage)
				return a.addFile(path, fi, hdr, stage)
			})
		}
		if err != nil {
			return err
		}
	}
	return g.Wait()
}

func setHeader(hdr *zip.FileHeader, rel string, fi os.FileInfo) {
	hdr.Name = filepath.ToSlash(rel)
	hdr.UncompressedSize64 = uint64(fi.Size())
	hdr.Modified = fi.ModTime()
	hdr.SetMode(fi.Mode())
	if hdr.Mode().IsDir() {
		hdr.Name += "/"
	}
	if hdr.UncompressedSize64 > 1<<32-1 {
		hdr.UncompressedSize = 1<<32 - 1
	} else {
		hdr.UncompressedSize = uint32(hdr.UncompressedSize64)
	}
}

// addSymlink stores the link target uncompressed with its sizes and CRC in the local header (no
// data descriptor), as fastzip does.
func (a *zipArchiver) addSymlink(path string, fi os.FileInfo, hdr *zip.FileHeader) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	target, err := os.Readlink(path)
	if err != nil {
		return err
	}
	hdr.Flags &^= 0x8
	hdr.Method = zip.Store
	hdr.CompressedSize64 = uint64(len(target))
	hdr.UncompressedSize64 = hdr.CompressedSize64
	hdr.CRC32 = crc32.ChecksumIEEE([]byte(target))
	w, err := a.rawHeader(fi, hdr)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, target)
	return err
}

// addFile compresses the file into its staging buffer outside the lock, then copies the result
// into the archive under it. Without a stage (one worker), or for a method without a registered
// compressor (Store), the file is written under the lock through the zip writer; a file that does
// not shrink is written again that way, stored.
func (a *zipArchiver) addFile(path string, fi os.FileInfo, hdr *zip.FileHeader, stage *stage) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	comp, ok := a.compressors[hdr.Method]
	if !ok || stage == nil {
		return a.addStored(f, fi, hdr)
	}

	cw, err := comp(stage)
	if err != nil {
		return err
	}
	br := readerPool.Get().(*bufio.Reader)
	defer readerPool.Put(br)
	br.Reset(f)
	_, err = io.Copy(io.MultiWriter(cw, stage.crc), br)
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	hdr.Flags |= 0x8
	hdr.CompressedSize64 = uint64(stage.written)
	if hdr.CompressedSize64 > hdr.UncompressedSize64 {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		hdr.Method = zip.Store
		return a.addStored(f, fi, hdr)
	}
	hdr.CRC32 = stage.crc.Sum32()

	a.mu.Lock()
	defer a.mu.Unlock()
	w, err := a.rawHeader(fi, hdr)
	if err != nil {
		return err
	}
	br.Reset(stage)
	_, err = br.WriteTo(w)
	return err
}

func (a *zipArchiver) addStored(f *os.File, fi os.FileInfo, hdr *zip.FileHeader) error {
	br := readerPool.Get().(*bufio.Reader)
	defer readerPool.Put(br)
	br.Reset(f)
	a.mu.Lock()
	defer a.mu.Unlock()
	w, err := a.header(fi, hdr)
	if err != nil {
		return err
	}
	_, err = br.WriteTo(w)
	return err
}

// header is zip.Writer.CreateHeader plus the Info-ZIP Unix extra field with the owner (0x7875).
func (a *zipArchiver) header(fi os.FileInfo, hdr *zip.FileHeader) (io.Writer, error) {
	hdr.Extra = append(hdr.Extra, ownerExtra(fi)...)
	return a.zw.CreateHeader(hdr)
}

// rawHeader is what CreateHeader would set (UTF-8 flag, versions, DOS time and the extended
// timestamp 0x5455), then CreateRaw: fastzip restores these because CreateRaw leaves them out.
func (a *zipArchiver) rawHeader(fi os.FileInfo, hdr *zip.FileHeader) (io.Writer, error) {
	valid1, require1 := needsUTF8(hdr.Name)
	valid2, require2 := needsUTF8(hdr.Comment)
	switch {
	case hdr.NonUTF8:
		hdr.Flags &^= 0x800
	case (require1 || require2) && valid1 && valid2:
		hdr.Flags |= 0x800
	}
	hdr.CreatorVersion = hdr.CreatorVersion&0xff00 | 20
	hdr.ReaderVersion = 20
	if !hdr.Modified.IsZero() {
		t := hdr.Modified
		hdr.ModifiedDate = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
		hdr.ModifiedTime = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
		hdr.Extra = append(hdr.Extra, mtimeExtra(t)...)
	}
	hdr.Extra = append(hdr.Extra, ownerExtra(fi)...)
	return a.zw.CreateRaw(hdr)
}

// needsUTF8 is archive/zip's detectUTF8: whether the name is valid UTF-8 and needs the flag.
func needsUTF8(s string) (valid, require bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r < 0x20 || r > 0x7d || r == 0x5c {
			if !utf8.ValidRune(r) || (r == utf8.RuneError && size == 1) {
				return false, false
			}
			require = true
		}
	}
	return true, require
}

func ownerExtra(fi os.FileInfo) []byte {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return unixOwnerExtra(st.Uid, st.Gid)
}

// flateWriter returns itself to its pool on Close, as fastzip's FlateCompressor does, so that each
// worker reuses one klauspost flate writer instead of allocating its tables per file.
type flateWriter struct {
	pool *sync.Pool
	*flate.Writer
}

func (fw *flateWriter) Close() error {
	err := fw.Writer.Close()
	fw.pool.Put(fw)
	return err
}

func pooledFlate(lvl int) zip.Compressor {
	pool := &sync.Pool{}
	pool.New = func() interface{} {
		w, err := flate.NewWriter(nil, lvl)
		if err != nil {
			panic(err)
		}
		return &flateWriter{pool, w}
	}
	return func(w io.Writer) (io.WriteCloser, error) {
		fw := pool.Get().(*flateWriter)
		fw.Reset(w)
		return fw, nil
	}
}
