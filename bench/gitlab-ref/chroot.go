package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// inside is the helper's only containment check, on both sides: a string prefix test of the
// cleaned absolute path (no symlink in the way is looked at).
func inside(chroot, path string) bool {
	return path == chroot || strings.HasPrefix(path, chroot+string(filepath.Separator))
}

// archivePath: a name to archive (relative to the working directory), its absolute path and its
// name in the archive, relative to chroot.
func archivePath(chroot, name string) (abs, rel string, err error) {
	if abs, err = filepath.Abs(name); err != nil {
		return "", "", err
	}
	if !inside(chroot, abs) {
		return "", "", fmt.Errorf("%s cannot be archived from outside of chroot (%s)", name, chroot)
	}
	rel, err = filepath.Rel(chroot, abs)
	return abs, rel, err
}

// entryPath: where an entry named `name` is written, refused when outside chroot; its parent
// directories are made (0777 before umask) as both extractors do for every entry.
func entryPath(chroot, name string) (string, error) {
	path, err := filepath.Abs(filepath.Join(chroot, name))
	if err != nil {
		return "", err
	}
	if !inside(chroot, path) {
		return "", fmt.Errorf("%s cannot be extracted outside of chroot (%s)", path, chroot)
	}
	return path, os.MkdirAll(filepath.Dir(path), 0o777)
}
