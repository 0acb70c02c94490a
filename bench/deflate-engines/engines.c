/* Deflate engines on a list of files: throughput (MB/s of input, one core) and ratio.
 * Usage: engines SMALL_LIST LARGE_LIST   (files listed one per line; small files are compressed
 * whole, one stream each; large files in 1 MiB blocks, each a whole stream, which is what the
 * block scheme costs). Built by bench/deflate-engines.ts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <libdeflate.h>
#include <isa-l/igzip_lib.h>

typedef struct { unsigned char *p; size_t n; } buf_t;

static buf_t *load(const char *list, size_t *count, size_t cap) {
  FILE *f = fopen(list, "r"); char line[4096]; size_t n = 0, total = 0; buf_t *v = NULL;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    FILE *g = fopen(line, "rb"); if (!g) continue;
    fseek(g, 0, SEEK_END); long sz = ftell(g); fseek(g, 0, SEEK_SET);
    if (total + sz > cap) sz = cap - total;
    unsigned char *p = malloc(sz + 1); sz = fread(p, 1, sz, g); fclose(g);
    v = realloc(v, (n + 1) * sizeof *v); v[n].p = p; v[n].n = sz; n++; total += sz;
    if (total >= cap) break;
  }
  fclose(f); *count = n; return v;
}

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static unsigned char out[(1 << 21)];
#define BLK (1 << 20)

static size_t z_one(z_stream *z, const unsigned char *p, size_t n) {
  deflateReset(z); z->next_in = (unsigned char *)p; z->avail_in = n; z->next_out = out; z->avail_out = sizeof out;
  deflate(z, Z_FINISH); return sizeof out - z->avail_out;
}
static struct libdeflate_compressor *ld;
static size_t ld_one(const unsigned char *p, size_t n) { return libdeflate_deflate_compress(ld, p, n, out, sizeof out); }
static struct isal_zstream is; static unsigned char *isbuf; static int islvl; static size_t isbufsz;
static size_t isal_one(const unsigned char *p, size_t n) {
  isal_deflate_init(&is); is.level = islvl; is.level_buf = isbuf; is.level_buf_size = isbufsz;
  is.end_of_stream = 1; is.flush = NO_FLUSH; is.next_in = (unsigned char *)p; is.avail_in = n; is.next_out = out; is.avail_out = sizeof out;
  isal_deflate(&is); return is.total_out;
}

static void run(const char *name, int kind, int level, buf_t *s, size_t ns, buf_t *l, size_t nl) {
  z_stream z; memset(&z, 0, sizeof z);
  if (kind == 0) deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  if (kind == 1) ld = libdeflate_alloc_compressor(level);
  if (kind == 2) { islvl = level; isbufsz = level == 0 ? 0 : level == 1 ? ISAL_DEF_LVL1_DEFAULT : level == 2 ? ISAL_DEF_LVL2_DEFAULT : ISAL_DEF_LVL3_DEFAULT; isbuf = isbufsz ? malloc(isbufsz) : NULL; }
  for (int part = 0; part < 2; part++) {
    buf_t *v = part ? l : s; size_t nv = part ? nl : ns; size_t in = 0, o = 0; double t0 = now();
    for (size_t i = 0; i < nv; i++)
      for (size_t off = 0; off < v[i].n || (off == 0 && v[i].n == 0); off += BLK) {
        size_t n = v[i].n - off < BLK ? v[i].n - off : BLK;
        size_t c = kind == 0 ? z_one(&z, v[i].p + off, n) : kind == 1 ? ld_one(v[i].p + off, n) : isal_one(v[i].p + off, n);
        in += n; o += c < n ? c : n; if (n == 0) break;
      }
    double dt = now() - t0;
    printf("%-12s %-5s in %7.1f MB  out %7.1f MB  ratio %.3f  %6.1f MB/s\n", name, part ? "large" : "small", in / 1e6, o / 1e6, (double)o / in, in / 1e6 / dt);
  }
  if (kind == 0) deflateEnd(&z);
  if (kind == 1) libdeflate_free_compressor(ld);
  if (kind == 2) free(isbuf);
}

int main(int argc, char **argv) {
  size_t ns, nl; buf_t *s = load(argv[1], &ns, 160u << 20), *l = load(argv[2], &nl, 160u << 20);
  char nm[32];
  for (int lv = 1; lv <= 9; lv += 4) { sprintf(nm, "zlib-%d", lv); run(nm, 0, lv, s, ns, l, nl); }
  for (int lv = 1; lv <= 9; lv++) { if (lv == 7 || lv == 8) continue; sprintf(nm, "libdeflate-%d", lv); run(nm, 1, lv, s, ns, l, nl); }
  for (int lv = 0; lv <= 3; lv++) { sprintf(nm, "isal-%d", lv); run(nm, 2, lv, s, ns, l, nl); }
  return 0;
}
