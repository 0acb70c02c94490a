// gitlab-ref: GitLab Runner's cache helper, rebuilt on the libraries it uses, as the yardstick for
// cachegate's cache-archiver / cache-extractor (bench/helper-vs-gitlab.ts, docs/archive.md "Against
// GitLab Runner's helper"). The archive code of gitlab-runner-helper, not its transfer code:
//
//	gitlab-ref zip-create DIR OUT LEVEL [PATH...]      fastzip's scheme (FF_USE_FASTZIP, on by default)
//	gitlab-ref zip-extract ZIP DIR
//	gitlab-ref tarzstd-create DIR OUT LEVEL [PATH...]  archive/tar + klauspost zstd
//	gitlab-ref tarzstd-extract ARCHIVE DIR
//
// DIR is the job's working directory (the helper's chroot); PATHs are the cache's `paths:`, relative
// to it (default "."). LEVEL is CACHE_COMPRESSION_LEVEL: fastest, fast, default, slow, slowest.
//
// Built offline in GOPATH mode from Debian's packages (golang-go, golang-github-klauspost-compress-dev,
// golang-golang-x-sync-dev, golang-golang-x-sys-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/gitlab-ref .
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage: gitlab-ref zip-create DIR OUT LEVEL [PATH...]
       gitlab-ref zip-extract ZIP DIR
       gitlab-ref tarzstd-create DIR OUT LEVEL [PATH...]
       gitlab-ref tarzstd-extract ARCHIVE DIR
LEVEL: fastest | fast | default | slow | slowest (CACHE_COMPRESSION_LEVEL)`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 4 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "zip-create", "tarzstd-create":
		if len(args) < 3 {
			usage()
		}
		var paths []string
		if len(args) > 3 {
			paths = args[3:]
		}
		err = create(cmd == "zip-create", args[0], args[1], args[2], paths)
	case "zip-extract", "tarzstd-extract":
		err = extract(cmd == "zip-extract", args[0], args[1])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitlab-ref:", err)
		os.Exit(1)
	}
}

// create mirrors CacheArchiverCommand.createZipFile: the archive goes to a temporary file beside
// OUT (an unbuffered *os.File, as there), which is renamed to OUT when complete.
func create(zipFormat bool, dir, out, levelName string, paths []string) error {
	level, err := compressionLevel(levelName)
	if err != nil {
		return err
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return err
	}
	// The helper runs in the job's directory and archives paths relative to it.
	if err := os.Chdir(dir); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	files, err := enumerate(wd, paths)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), "archive_")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if zipFormat {
		err = archiveZip(context.Background(), f, wd, level, files)
	} else {
		err = archiveTarZstd(context.Background(), f, wd, level, files)
	}
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

// extract mirrors CacheExtractorCommand: the archive is opened as an io.ReaderAt with its size and
// extracted into the working directory.
func extract(zipFormat bool, archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	wd, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if zipFormat {
		return extractZip(context.Background(), f, fi.Size(), wd)
	}
	return extractTarZstd(context.Background(), io.NewSectionReader(f, 0, fi.Size()), wd)
}

// workers is fastzip's default concurrency for both archiving and extracting (GOMAXPROCS), unless
// FASTZIP_ARCHIVER_CONCURRENCY / FASTZIP_EXTRACTOR_CONCURRENCY say otherwise, as in the helper.
func workers(env string) (int, error) {
	v := os.Getenv(env)
	if v == "" {
		return runtime.GOMAXPROCS(0), nil
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: want a positive integer, got %q", env, v)
	}
	return n, nil
}
