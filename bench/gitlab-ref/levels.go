package main

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// level is GitLab's archive.CompressionLevel (commands/helpers/archive/archive.go).
type level int

const (
	fastest level = -2
	fast    level = -1
	dflt    level = 0
	slow    level = 1
	slowest level = 2
)

// compressionLevel is GetCompressionLevel (commands/helpers/archiver.go), except that an unknown
// name is an error here rather than a warning and "default": a benchmark must not measure the
// wrong level silently.
func compressionLevel(name string) (level, error) {
	switch name {
	case "fastest":
		return fastest, nil
	case "fast":
		return fast, nil
	case "default", "":
		return dflt, nil
	case "slow":
		return slow, nil
	case "slowest":
		return slowest, nil
	}
	return 0, fmt.Errorf("compression level %q: want fastest, fast, default, slow or slowest", name)
}

// flateLevel maps a level as the fastzip archiver does (fastzip/zip_fastzip_archiver.go); fastest
// is not flate at all there but the Store method.
var flateLevel = map[level]int{fast: 1, dflt: 5, slow: 7, slowest: 9}

// zstdLevel maps a level as the tar.zst archiver does (tarzstd/tarzstd_archiver.go): fastest and
// fast are both SpeedFastest.
var zstdLevel = map[level]zstd.EncoderLevel{
	fastest: zstd.SpeedFastest,
	fast:    zstd.SpeedFastest,
	dflt:    zstd.SpeedDefault,
	slow:    zstd.SpeedBetterCompression,
	slowest: zstd.SpeedBestCompression,
}
