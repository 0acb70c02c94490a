// klauspost/compress flate (what GitLab's helper zips with) on the same file lists as engines.c:
// small files whole, large files as one stream each. Built by bench/deflate-engines.ts.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/flate"
)

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func load(list string) [][]byte {
	f, _ := os.Open(list)
	defer f.Close()
	var v [][]byte
	total := 0
	s := bufio.NewScanner(f)
	for s.Scan() {
		b, err := os.ReadFile(s.Text())
		if err != nil {
			continue
		}
		if total+len(b) > 160<<20 {
			b = b[:160<<20-total]
		}
		v = append(v, b)
		total += len(b)
		if total >= 160<<20 {
			break
		}
	}
	return v
}

func main() {
	small, large := load(os.Args[1]), load(os.Args[2])
	for _, lv := range []int{1, 5} {
		for part, v := range [][][]byte{small, large} {
			c := &counter{}
			w, _ := flate.NewWriter(c, lv)
			var in, out int64
			t0 := time.Now()
			for _, b := range v {
				c.n = 0
				w.Reset(c)
				w.Write(b)
				w.Close()
				in += int64(len(b))
				if c.n < int64(len(b)) {
					out += c.n
				} else {
					out += int64(len(b))
				}
			}
			dt := time.Since(t0).Seconds()
			name := []string{"small", "large"}[part]
			fmt.Printf("klauspost-%d  %-5s in %7.1f MB  out %7.1f MB  ratio %.3f  %6.1f MB/s\n", lv, name, float64(in)/1e6, float64(out)/1e6, float64(out)/float64(in), float64(in)/1e6/dt)
		}
	}
	_ = io.Discard
}
