package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lchmod: Linux cannot change a symlink's mode, so symlinks are left alone; otherwise fchmodat
// with the Go mode bits as they are (the kernel keeps the low 12), as fastzip and GitLab do.
func lchmod(name string, mode os.FileMode) error {
	if mode&os.ModeSymlink != 0 {
		return nil
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, name, uint32(mode), 0); err != nil {
		return &os.PathError{Op: "lchmod", Path: name, Err: err}
	}
	return nil
}

// lchtimes sets atime and mtime without following a symlink, at microsecond precision (lutimes).
func lchtimes(name string, atime, mtime time.Time) error {
	tv := []unix.Timeval{unix.NsecToTimeval(atime.UnixNano()), unix.NsecToTimeval(mtime.UnixNano())}
	if err := unix.Lutimes(name, tv); err != nil {
		return &os.PathError{Op: "lchtimes", Path: name, Err: err}
	}
	return nil
}
