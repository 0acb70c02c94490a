package main

import (
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// stage holds one file's compressed bytes between its worker and the archive: the first
// bufferSize bytes in memory (allocated on first use), the rest in a file of its own in the stage
// directory, as fastzip's internal filepool.File does. Memory bound: workers × bufferSize.
type stage struct {
	dir     string
	idx     int
	size    int
	buf     []byte
	spill   *os.File
	written int64
	read    int64
	crc     hash.Hash32
}

func (s *stage) Write(p []byte) (int, error) {
	if s.buf == nil && s.size > 0 {
		s.buf = make([]byte, s.size)
	}
	n := 0
	if s.written < int64(len(s.buf)) {
		n = copy(s.buf[s.written:], p)
		p = p[n:]
		s.written += int64(n)
	}
	if len(p) == 0 {
		return n, nil
	}
	if s.spill == nil {
		f, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("fastzip_%02d", s.idx)))
		if err != nil {
			return n, err
		}
		s.spill = f
	}
	m, err := s.spill.WriteAt(p, s.written-int64(len(s.buf)))
	s.written += int64(m)
	return n + m, err
}

func (s *stage) Read(p []byte) (int, error) {
	left := s.written - s.read
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n := 0
	if s.read < int64(len(s.buf)) {
		n = copy(p, s.buf[s.read:])
		s.read += int64(n)
		p = p[n:]
	}
	if len(p) == 0 {
		return n, nil
	}
	m, err := s.spill.ReadAt(p, s.read-int64(len(s.buf)))
	s.read += int64(m)
	return n + m, err
}

func (s *stage) reset() {
	s.written, s.read = 0, 0
	s.crc.Reset()
	if s.spill != nil {
		s.spill.Truncate(0)
	}
}

// stagePool hands out one stage per worker; get blocks while all are busy, which is what bounds
// the number of files in flight.
type stagePool struct {
	stages []*stage
	free   chan int
}

func newStagePool(dir string, n, bufferSize int) *stagePool {
	p := &stagePool{stages: make([]*stage, n), free: make(chan int, n)}
	for i := range p.stages {
		p.stages[i] = &stage{dir: dir, idx: i, size: bufferSize, crc: crc32.NewIEEE()}
		p.free <- i
	}
	return p
}

func (p *stagePool) get() *stage { return p.stages[<-p.free] }

func (p *stagePool) put(s *stage) {
	s.reset()
	p.free <- s.idx
}

func (p *stagePool) close() error {
	var first error
	for _, s := range p.stages {
		if s.spill == nil {
			continue
		}
		if err := s.spill.Close(); err != nil && first == nil {
			first = err
		}
		if err := os.Remove(s.spill.Name()); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}
