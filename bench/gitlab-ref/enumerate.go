package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// enumerate mirrors fileArchiver.processPaths for plain paths (no globs, no excludes, no
// --untracked): filepath.Walk from each path, every file, directory and symlink found (not
// followed), by its path relative to the working directory, with its Lstat info.
func enumerate(wd string, paths []string) (map[string]os.FileInfo, error) {
	files := map[string]os.FileInfo{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(wd, abs)
		if err != nil {
			return nil, err
		}
		if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("%s is not inside the working directory %s", p, wd)
		}
		err = filepath.Walk(rel, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				// the helper logs and goes on; a benchmark wants to know
				return err
			}
			fi, err := os.Lstat(path)
			if err != nil {
				return err
			}
			files[filepath.ToSlash(path)] = fi
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}
