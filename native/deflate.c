/*
 * cachegate_deflate: raw deflate for zip creation with libdeflate (static), on libuv's threadpool.
 * Why native: libdeflate level 1 compresses this project's node_modules about 2x faster than
 * node:zlib level 1 and than klauspost flate level 1, with a better ratio (docs/archive.md).
 *
 * packFiles(level, input, lengths, output, results) -> Promise<void>
 *   Files laid back to back in `input` (lengths[i] bytes each). For each: CRC-32 into
 *   results[2i], and the raw deflate stream appended to `output` with its length in results[2i+1],
 *   or 0xFFFFFFFF when it would not be smaller than the file (store it; nothing is appended).
 *   `output` needs PACK_SLACK (4096) bytes more than `input`.
 *   With a 6th argument `paths` (NUL-terminated file names back to back), the job first reads each
 *   file (open O_NOFOLLOW, at most lengths[i] bytes, into its slot of lengths[i] bytes): results
 *   then has 3 slots per file, the third the bytes read (the slot may be longer: a file that
 *   shrank) or 0xFFFFFFFF when the file vanished (ENOENT, ENOTDIR). Reading on the threadpool
 *   overlaps it with compression; the main thread reading every small file was the bottleneck on
 *   trees of many small files (docs/archive.md "Deflate engines").
 * packBlockAt(level, fd, position, input, output, last) -> Promise<[crc, n, read]>
 *   One block of a large file, read by the job: up to input.length bytes of `fd` at `position`
 *   (fewer when the file ends: `read`), so a large file costs the main thread no read and no CRC
 *   per block (docs/archive.md "Session 8"; crc32Combine(crc1, crc2, len2) joins the CRCs).
 *   libdeflate has no streaming API: each block is a complete stream, so for every block but the
 *   last the final-block bit is cleared and an empty stored block (byte alignment, like a sync
 *   flush) appended, which makes the blocks' concatenation one ordinary deflate stream (the way
 *   zlib's examples/gzjoin.c joins streams). The last block's header is found by walking the
 *   blocks with zlib's inflate(Z_BLOCK). `output` needs compressBound(input) bytes (see
 *   blockBound). A block whose 64 KiB sample from its middle deflates (at level 1) to more than
 *   70 % is stored instead (deflate's stored blocks, written directly).
 *
 * No global state: compressors are cached per thread, so the module is context-aware (worker
 * threads and several Node environments may load it).
 */
#define _GNU_SOURCE /* pread, strerrorname_np */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <stdio.h>
#include <unistd.h>
#include <libdeflate.h>
#include <zlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVEL 12
#define PACK_SLACK 4096
static _Thread_local struct libdeflate_compressor *compressors[MAX_LEVEL + 1];

static struct libdeflate_compressor *compressor(int level) {
  if (!compressors[level]) compressors[level] = libdeflate_alloc_compressor(level);
  return compressors[level];
}

/* Bit offset of the last block's header in a complete raw deflate stream, and where the stream
 * ends (bits); -1 if the stream does not decode. */
static int last_block(const uint8_t *in, size_t n, size_t *header_bit, size_t *end_bit, uint8_t *scratch, size_t scratch_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, -15) != Z_OK) return -1;
  z.next_in = (uint8_t *)in;
  z.avail_in = (uInt)n;
  size_t header = 0, end = 0;
  int ret = Z_OK;
  for (;;) {
    z.next_out = scratch;
    z.avail_out = (uInt)scratch_len;
    ret = inflate(&z, Z_BLOCK);
    if (ret == Z_STREAM_END) break;
    if (ret != Z_OK && ret != Z_BUF_ERROR) break;
    if (ret == Z_BUF_ERROR && z.avail_in == 0) break;
    /* at a block boundary of a block that is not the last one: the next header starts here */
    size_t at = (size_t)(z.next_in - in) * 8 - (size_t)(z.data_type & 7);
    if ((z.data_type & 128) && !(z.data_type & 64)) header = at;
    /* the last block's end-of-block code (inflate then skips to the byte, so note it here) */
    if ((z.data_type & 128) && (z.data_type & 64)) end = at;
  }
  *header_bit = header;
  *end_bit = end;
  inflateEnd(&z);
  return ret == Z_STREAM_END ? 0 : -1;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref refs[5];
  int nrefs;
  int level;
  int block; /* 1 packBlockAt, 0 packFiles */
  int last;
  uint8_t *in;
  size_t in_len;
  uint8_t *out;
  size_t out_len;
  uint32_t *lengths;
  size_t count;
  uint32_t *results;
  const char *paths; /* NUL-terminated names back to back, or NULL */
  size_t paths_len;
  char errbuf[640];
  uint32_t crc;
  size_t produced;
  const char *error;
  int read_only; /* readFiles: packFiles' reads without the CRC and deflate */
  int fd; /* packBlockAt: the block is read from fd at pos first (got: bytes read) */
  int64_t pos;
  size_t got;
} job_t;

/* Reads up to `len` bytes of `path` into `buf`; bytes read, or -1 with errno set. */
static ssize_t read_file(const char *path, uint8_t *buf, size_t len) {
  /* O_NONBLOCK: a name swapped for a FIFO since selection must not hang a threadpool thread */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < len) {
    ssize_t n = pread(fd, buf + off, len - off, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    if (n == 0) break;
    off += (size_t)n;
  }
  close(fd);
  return (ssize_t)off;
}

static void run_files(job_t *j) {
  struct libdeflate_compressor *c = j->read_only ? NULL : compressor(j->level);
  if (!c && !j->read_only) { j->error = "out of memory"; return; }
  size_t in_off = 0, out_off = 0, path_off = 0;
  int slots = j->paths ? 3 : 2;
  for (size_t i = 0; i < j->count; i++) {
    size_t len = j->lengths[i];
    if (in_off + len > j->in_len) { j->error = "lengths exceed the input"; return; }
    uint8_t *p = j->in + in_off;
    in_off += len;
    if (j->paths) {
      const char *path = j->paths + path_off;
      const char *nul = path_off < j->paths_len ? memchr(path, 0, j->paths_len - path_off) : NULL;
      if (!nul) { j->error = "paths: fewer names than lengths"; return; }
      path_off += (size_t)(nul - path) + 1;
      ssize_t got = read_file(path, p, len);
      if (got < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        j->results[3 * i] = 0;
        j->results[3 * i + 1] = 0xFFFFFFFFu;
        j->results[3 * i + 2] = 0xFFFFFFFFu;
        continue;
      }
      if (got < 0) {
        const char *name = strerrorname_np(errno);
        snprintf(j->errbuf, sizeof j->errbuf, "%s: %s, open '%.512s'", name ? name : "EIO", strerror(errno), path);
        j->error = j->errbuf;
        return;
      }
      len = (size_t)got;
      j->results[3 * i + 2] = (uint32_t)got;
      if (j->read_only) continue;
    }
    j->results[slots * i] = (uint32_t)libdeflate_crc32(0, p, len);
    /* libdeflate wants slack past the result: give it all the room left, keep the result only
       if smaller than the file (out_off <= in_off, so the room is at least len + PACK_SLACK) */
    size_t n = len > 0 ? libdeflate_deflate_compress(c, p, len, j->out + out_off, j->out_len - out_off) : 0;
    if (n == 0 || n >= len) {
      j->results[slots * i + 1] = 0xFFFFFFFFu;
    } else {
      j->results[slots * i + 1] = (uint32_t)n;
      out_off += n;
    }
  }
}

/* A block whose sample deflates to more than this share of its size is stored (level 0): see
 * docs/archive.md "Deflate engines" (what GitLab's klauspost level 1 does with such data). */
#define SAMPLE (64 * 1024)
#define STORE_ABOVE 0.7

static int worth_deflating(struct libdeflate_compressor *c, const uint8_t *in, size_t len) {
  if (len < 4 * SAMPLE) return 1;
  static _Thread_local uint8_t *scratch;
  if (!scratch && !(scratch = malloc(SAMPLE + 4096))) return 1;
  const uint8_t *mid = in + (len - SAMPLE) / 2;
  size_t n = libdeflate_deflate_compress(c, mid, SAMPLE, scratch, SAMPLE + 4096);
  return n > 0 && n <= STORE_ABOVE * SAMPLE;
}

/* `in` as deflate stored blocks (a copy; byte-aligned, so no end-of-stream walk is needed when
 * not last); bytes written, 0 when `cap` is too small. */
static size_t stored_blocks(const uint8_t *in, size_t len, uint8_t *out, size_t cap, int last) {
  size_t o = 0, i = 0;
  do {
    size_t n = len - i > 65535 ? 65535 : len - i;
    if (o + 5 + n > cap) return 0;
    out[o++] = last && i + n == len ? 1 : 0; /* BFINAL, BTYPE 00, padding */
    out[o++] = (uint8_t)n; out[o++] = (uint8_t)(n >> 8);
    out[o++] = (uint8_t)~n; out[o++] = (uint8_t)(~n >> 8);
    memcpy(out + o, in + i, n);
    o += n;
    i += n;
  } while (i < len);
  return o;
}

/* The block's bytes from the file (a short read: the file ended). */
static int read_block(job_t *j) {
  size_t off = 0;
  while (off < j->in_len) {
    ssize_t n = pread(j->fd, j->in + off, j->in_len - off, (off_t)(j->pos + (int64_t)off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const char *name = strerrorname_np(errno);
      snprintf(j->errbuf, sizeof j->errbuf, "%s: %s, read", name ? name : "EIO", strerror(errno));
      j->error = j->errbuf;
      return -1;
    }
    if (n == 0) break;
    off += (size_t)n;
  }
  j->got = j->in_len = off;
  return 0;
}

static void run_block(job_t *j) {
  if (read_block(j)) return;
  struct libdeflate_compressor *c = compressor(j->level);
  if (!c) { j->error = "out of memory"; return; }
  j->crc = (uint32_t)libdeflate_crc32(0, j->in, j->in_len);
  if (j->out_len < 16) { j->error = "output buffer too small"; return; }
  /* the sample is probed at level 1 whatever the level: at level 5 it cost ~0.4 s of CPU on the
     bench tree's 300 incompressible blocks, for the same decision (docs/archive.md "Session 8") */
  struct libdeflate_compressor *probe = j->level > 1 ? compressor(1) : c;
  if (!probe) { j->error = "out of memory"; return; }
  if (j->level == 0 || !worth_deflating(probe, j->in, j->in_len)) {
    if (!(j->produced = stored_blocks(j->in, j->in_len, j->out, j->out_len, j->last))) j->error = "output buffer too small";
    return;
  }
  size_t n = libdeflate_deflate_compress(c, j->in, j->in_len, j->out, j->out_len - 6);
  if (n == 0) { j->error = "output buffer too small"; return; }
  if (!j->last) {
    size_t header, end;
    uint8_t *scratch = malloc(64 * 1024);
    if (!scratch) { j->error = "out of memory"; return; }
    int bad = last_block(j->out, n, &header, &end, scratch, 64 * 1024);
    free(scratch);
    if (bad) { j->error = "libdeflate's output did not decode"; return; }
    j->out[header / 8] &= (uint8_t)~(1u << (header % 8)); /* BFINAL = 0 */
    /* clear the padding after the last block, then an empty stored block: 3 header bits of 0,
       padding to the byte, LEN 0000 and NLEN FFFF */
    size_t bytes = (end + 7) / 8;
    if (end % 8) j->out[end / 8] &= (uint8_t)((1u << (end % 8)) - 1);
    size_t free_bits = bytes * 8 - end;
    n = bytes;
    if (free_bits < 3) j->out[n++] = 0;
    j->out[n++] = 0x00; j->out[n++] = 0x00; j->out[n++] = 0xFF; j->out[n++] = 0xFF;
  }
  j->produced = n;
}

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  if (j->block) run_block(j); else run_files(j);
}

/* Resolves (with `ok`) or rejects (with `error`) a job's promise and frees what the job held. */
static void settle_job(napi_env env, napi_deferred deferred, const char *error, napi_value ok, napi_ref *refs, int nrefs, napi_async_work work) {
  if (error) {
    napi_value msg, err;
    napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, deferred, err);
  } else {
    napi_resolve_deferred(env, deferred, ok);
  }
  for (int i = 0; i < nrefs; i++) napi_delete_reference(env, refs[i]);
  napi_delete_async_work(env, work);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value v;
  if (status != napi_ok && !j->error) j->error = "cancelled";
  if (j->error) {
    v = NULL;
  } else if (j->block) {
    napi_value a, b, c;
    napi_create_array_with_length(env, 3, &v);
    napi_create_uint32(env, j->crc, &a);
    napi_create_uint32(env, (uint32_t)j->produced, &b);
    napi_set_element(env, v, 0, a);
    napi_set_element(env, v, 1, b);
    napi_create_uint32(env, (uint32_t)j->got, &c);
    napi_set_element(env, v, 2, c);
  } else {
    napi_get_undefined(env, &v);
  }
  settle_job(env, j->deferred, j->error, v, j->refs, j->nrefs, j->work);
  free(j);
}

/* A Uint8Array or Uint32Array (or, with want >= 0, that type only): its data and length in bytes;
 * referenced in refs[*nrefs] to keep it alive while the job runs. */
static int typed_ref(napi_env env, napi_value v, int want, void **data, size_t *bytes, napi_ref *refs, int *nrefs) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  napi_typedarray_type t;
  size_t len, off;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &t, &len, data, &ab, &off) != napi_ok) return -1;
  if (want >= 0 && (int)t != want) return -1;
  size_t width = t == napi_uint32_array || t == napi_int32_array ? 4 : t == napi_uint8_array ? 1 : t == napi_float64_array ? 8 : 0;
  if (width == 0 || (want < 0 && t != napi_uint32_array && t != napi_uint8_array)) return -1;
  *bytes = len * width;
  napi_create_reference(env, v, 1, &refs[(*nrefs)++]);
  return 0;
}

static int typed(napi_env env, napi_value v, void **data, size_t *bytes, job_t *j) {
  return typed_ref(env, v, -1, data, bytes, j->refs, &j->nrefs);
}

static napi_value fail(napi_env env, job_t *j, const char *msg) {
  for (int i = 0; j && i < j->nrefs; i++) napi_delete_reference(env, j->refs[i]);
  free(j);
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Runs `run` on the threadpool, then `done` on the main thread; returns the job's promise. */
static napi_value queue_job(napi_env env, const char *what, napi_async_execute_callback run, napi_async_complete_callback done, void *data, napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, name;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, run, done, data, work);
  napi_queue_async_work(env, *work);
  return promise;
}

static napi_value start(napi_env env, job_t *j) {
  return queue_job(env, "cachegate_deflate", execute, complete, j, &j->deferred, &j->work);
}

static int level_arg(napi_env env, napi_value v, int *level) {
  int32_t l;
  if (napi_get_value_int32(env, v, &l) != napi_ok || l < 0 || l > MAX_LEVEL) return -1;
  *level = l;
  return 0;
}

static napi_value pack_files(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job_t *j = calloc(1, sizeof *j);
  if (!j) return fail(env, j, "out of memory");
  size_t lbytes, rbytes;
  if (argc < 5 || level_arg(env, argv[0], &j->level)) return fail(env, j, "packFiles: level 0-12 expected");
  if (typed(env, argv[1], (void **)&j->in, &j->in_len, j) || typed(env, argv[2], (void **)&j->lengths, &lbytes, j) ||
      typed(env, argv[3], (void **)&j->out, &j->out_len, j) || typed(env, argv[4], (void **)&j->results, &rbytes, j))
    return fail(env, j, "packFiles(level, input, lengths: Uint32Array, output, results: Uint32Array)");
  if (argc >= 6 && typed(env, argv[5], (void **)&j->paths, &j->paths_len, j)) return fail(env, j, "packFiles: paths must be a Uint8Array");
  j->count = lbytes / 4;
  if (j->out_len < j->in_len + PACK_SLACK) return fail(env, j, "packFiles: output needs 4096 bytes more than input");
  if (rbytes < (j->paths ? 12 : 8) * j->count) return fail(env, j, "packFiles: results needs 2 slots per file (3 with paths)");
  return start(env, j);
}

static napi_value pack_block_at(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = 6;
  job_t *j = calloc(1, sizeof *j);
  if (!j || napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return fail(env, j, "packBlockAt: bad call");
  j->block = 1;
  bool last;
  if (argc < 6 || level_arg(env, argv[0], &j->level)) return fail(env, j, "packBlockAt: level 0-12 expected");
  if (napi_get_value_int32(env, argv[1], &j->fd) != napi_ok || j->fd < 0 || napi_get_value_int64(env, argv[2], &j->pos) != napi_ok || j->pos < 0 ||
      typed(env, argv[3], (void **)&j->in, &j->in_len, j) || typed(env, argv[4], (void **)&j->out, &j->out_len, j) ||
      napi_get_value_bool(env, argv[5], &last) != napi_ok)
    return fail(env, j, "packBlockAt(level, fd, position, input, output, last: boolean)");
  j->last = last;
  return start(env, j);
}

/* readFiles(input, lengths, results, paths) -> Promise<void>: packFiles' reads alone (results[3i+2]
 * the bytes read or 0xFFFFFFFF: vanished), for the tar writer's small files (docs/archive.md "Session 8"). */
static napi_value read_files(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  job_t *j = calloc(1, sizeof *j);
  if (!j) return fail(env, j, "out of memory");
  j->read_only = 1;
  size_t lbytes, rbytes;
  if (argc < 4 || typed(env, argv[0], (void **)&j->in, &j->in_len, j) || typed(env, argv[1], (void **)&j->lengths, &lbytes, j) ||
      typed(env, argv[2], (void **)&j->results, &rbytes, j) || typed(env, argv[3], (void **)&j->paths, &j->paths_len, j))
    return fail(env, j, "readFiles(input, lengths: Uint32Array, results: Uint32Array, paths)");
  j->count = lbytes / 4;
  if (rbytes < 12 * j->count) return fail(env, j, "readFiles: results needs 3 slots per file");
  return start(env, j);
}

/* zlib's crc32_combine: the CRC-32 of A then B from crc(A), crc(B) and B's length. */
static napi_value crc32_combine_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t a, b;
  int64_t len;
  if (argc < 3 || napi_get_value_uint32(env, argv[0], &a) != napi_ok || napi_get_value_uint32(env, argv[1], &b) != napi_ok ||
      napi_get_value_int64(env, argv[2], &len) != napi_ok || len < 0) {
    napi_throw_type_error(env, NULL, "crc32Combine(crc1, crc2, len2)");
    return NULL;
  }
  napi_create_uint32(env, (uint32_t)crc32_combine(a, b, (z_off_t)len), &v);
  return v;
}

static napi_value block_bound(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t n;
  if (argc < 1 || napi_get_value_int64(env, argv[0], &n) != napi_ok || n < 0) {
    napi_throw_type_error(env, NULL, "blockBound(bytes)");
    return NULL;
  }
  napi_create_int64(env, (int64_t)libdeflate_deflate_compress_bound(NULL, (size_t)n) + 16, &v);
  return v;
}

/*
 * Extraction: writeFiles(input, meta, names, results) -> Promise<void>
 *   Small files of an extraction written on the threadpool, so that several are created at once
 *   (file creation is most of the time of extracting many small files, and one thread made them
 *   one after another; docs/archive.md "Extraction safety" and "Against GitLab Runner's helper").
 *   The caller (file-batches.ts) decides everything about paths: each file is `name` (one path
 *   component) in the directory handle `dirfd` it resolved, and this only does what the
 *   SafeWriter's synchronous path does, relative to that handle:
 *   decode (method 8: raw deflate with libdeflate into a per-thread buffer; 0: the bytes as they
 *   are), check the size and, unless crc is -1, the CRC-32, all before anything is created; then
 *   openat(dirfd, name, O_CREAT|O_EXCL|O_NOFOLLOW); on EEXIST, unless a directory is there, unlinkat
 *   (never followed) and openat again, once; pwrite, fchmod when asked, futimens, close. A failure
 *   after the create unlinks the file: no partial file stays.
 *   meta: Float64Array, WF_SLOTS per file: dirfd, input bytes, method, size, crc (or -1), mode,
 *   chmod (0/1), atime (s), mtime (ms), uid, gid (-1: leave the owner; else fchown before fchmod,
 *   a failure ignored as GitLab's helper does: src/archive/owners.ts). results: Int32Array, 2 per file: status (0 written,
 *   > 0 an errno, WF_BAD_DATA, WF_BAD_CRC, WF_BAD_SIZE, WF_DIR_IN_WAY) and, for WF_BAD_SIZE, the
 *   bytes decoded. The job stops at the first failure; later files keep status WF_NOT_RUN.
 */
#define WF_SLOTS 11
#define WF_BAD_DATA -2
#define WF_BAD_CRC -3
#define WF_BAD_SIZE -4
#define WF_DIR_IN_WAY -5
#define WF_NOT_RUN -6
#define WF_MAX_SIZE (64u << 20)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref refs[4];
  int nrefs;
  uint8_t *in;
  size_t in_len;
  double *meta;
  size_t count;
  const char *names;
  size_t names_len;
  int32_t *results;
  const char *error;
} wjob_t;

static _Thread_local struct libdeflate_decompressor *decompressor;
static _Thread_local uint8_t *scratch_out;
static _Thread_local size_t scratch_len;

/* The file's bytes (decoded and checked), or NULL with results set. */
static const uint8_t *decoded(const double *m, const uint8_t *in, size_t in_len, int32_t *res) {
  size_t size = (size_t)m[3];
  const uint8_t *data = in;
  if (m[2] == 8) {
    if (!decompressor && !(decompressor = libdeflate_alloc_decompressor())) { res[0] = ENOMEM; return NULL; }
    if (scratch_len < size + 1) {
      uint8_t *p = realloc(scratch_out, size + 1);
      if (!p) { res[0] = ENOMEM; return NULL; }
      scratch_out = p;
      scratch_len = size + 1;
    }
    size_t got = 0;
    /* room for one byte more than announced: more data than the size is a size mismatch */
    enum libdeflate_result r = libdeflate_deflate_decompress(decompressor, in, in_len, scratch_out, size + 1, &got);
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE || (r == LIBDEFLATE_SUCCESS && got != size)) { res[0] = WF_BAD_SIZE; res[1] = (int32_t)got; return NULL; }
    if (r != LIBDEFLATE_SUCCESS) { res[0] = WF_BAD_DATA; return NULL; }
    data = scratch_out;
  } else if (in_len != size) {
    res[0] = WF_BAD_SIZE;
    res[1] = (int32_t)in_len;
    return NULL;
  }
  if (m[4] >= 0 && (uint32_t)libdeflate_crc32(0, data, size) != (uint32_t)m[4]) { res[0] = WF_BAD_CRC; return NULL; }
  return data;
}

static int create_at(int dirfd, const char *name, mode_t mode, int32_t *res) {
  int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = openat(dirfd, name, flags, mode);
  if (fd < 0 && errno == EEXIST) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) { res[0] = WF_DIR_IN_WAY; return -1; }
    if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) { res[0] = errno; return -1; }
    fd = openat(dirfd, name, flags, mode);
  }
  if (fd < 0) res[0] = errno;
  return fd;
}

static int write_one(const double *m, const char *name, const uint8_t *data, int32_t *res) {
  int dirfd = (int)m[0];
  size_t size = (size_t)m[3];
  mode_t mode = (mode_t)m[5];
  int fd = create_at(dirfd, name, mode & 0777, res);
  if (fd < 0) return -1;
  int err = 0;
  for (size_t off = 0; off < size && !err;) {
    ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) err = n < 0 ? errno : EIO;
    else off += (size_t)n;
  }
  if (!err && m[9] >= 0 && m[10] >= 0) (void)!fchown(fd, (uid_t)m[9], (gid_t)m[10]);
  if (!err && m[6] != 0 && fchmod(fd, mode & 07777) != 0) err = errno;
  if (!err) {
    struct timespec ts[2];
    double at = m[7], mt = m[8] / 1000;
    ts[0].tv_sec = (time_t)at;
    ts[0].tv_nsec = (long)((at - (double)ts[0].tv_sec) * 1e9);
    ts[1].tv_sec = (time_t)mt;
    ts[1].tv_nsec = (long)((mt - (double)ts[1].tv_sec) * 1e9);
    if (ts[1].tv_nsec < 0) { ts[1].tv_sec -= 1; ts[1].tv_nsec += 1000000000L; }
    if (futimens(fd, ts) != 0) err = errno;
  }
  if (close(fd) != 0 && !err && errno != EINTR) err = errno;
  if (err) {
    unlinkat(dirfd, name, 0); /* ours: created with O_EXCL above */
    res[0] = err;
    return -1;
  }
  return 0;
}

static void run_writes(napi_env env, void *data) {
  (void)env;
  wjob_t *j = data;
  size_t in_off = 0, name_off = 0;
  for (size_t i = 0; i < j->count; i++) j->results[2 * i] = WF_NOT_RUN;
  for (size_t i = 0; i < j->count; i++) {
    const double *m = j->meta + WF_SLOTS * i;
    int32_t *res = j->results + 2 * i;
    res[1] = 0;
    const char *name = j->names + name_off;
    const char *nul = name_off < j->names_len ? memchr(name, 0, j->names_len - name_off) : NULL;
    size_t in_len = (size_t)m[1];
    if (!nul || m[1] < 0 || in_off + in_len > j->in_len || m[3] < 0 || m[3] > WF_MAX_SIZE || m[0] < 0) { j->error = "writeFiles: bad arguments"; return; }
    name_off += (size_t)(nul - name) + 1;
    /* one component, never "", "." or "..": the caller resolved the directory */
    if (name[0] == 0 || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) { j->error = "writeFiles: a name must be one path component"; return; }
    const uint8_t *bytes = decoded(m, j->in + in_off, in_len, res);
    in_off += in_len;
    if (!bytes || write_one(m, name, bytes, res) != 0) return;
    res[0] = 0;
  }
}

static void writes_done(napi_env env, napi_status status, void *data) {
  wjob_t *j = data;
  napi_value v;
  if (status != napi_ok && !j->error) j->error = "cancelled";
  napi_get_undefined(env, &v);
  settle_job(env, j->deferred, j->error, v, j->refs, j->nrefs, j->work);
  free(j);
}

static int typed_as(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *bytes, wjob_t *j) {
  return typed_ref(env, v, (int)want, data, bytes, j->refs, &j->nrefs);
}

static napi_value write_files(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  wjob_t *j = calloc(1, sizeof *j);
  size_t meta_bytes, res_bytes;
  if (!j || argc < 4 || typed_as(env, argv[0], napi_uint8_array, (void **)&j->in, &j->in_len, j) ||
      typed_as(env, argv[1], napi_float64_array, (void **)&j->meta, &meta_bytes, j) ||
      typed_as(env, argv[2], napi_uint8_array, (void **)&j->names, &j->names_len, j) ||
      typed_as(env, argv[3], napi_int32_array, (void **)&j->results, &res_bytes, j)) {
    for (int i = 0; j && i < j->nrefs; i++) napi_delete_reference(env, j->refs[i]);
    free(j);
    napi_throw_type_error(env, NULL, "writeFiles(input: Uint8Array, meta: Float64Array, names: Uint8Array, results: Int32Array)");
    return NULL;
  }
  j->count = meta_bytes / (8 * WF_SLOTS);
  if (res_bytes < 8 * j->count) {
    for (int i = 0; i < j->nrefs; i++) napi_delete_reference(env, j->refs[i]);
    free(j);
    napi_throw_type_error(env, NULL, "writeFiles: results needs 2 slots per file");
    return NULL;
  }
  return queue_job(env, "cachegate_write_files", run_writes, writes_done, j, &j->deferred, &j->work);
}

/*
 * Extraction: inflateFile(archiveFd, start, csize, method, size, outFd) -> Promise<[crc, produced]>
 *   One large zip entry (method 0 stored, 8 deflate) on the threadpool: pread from the archive,
 *   zlib inflate, CRC-32, pwrite at offsets from 0 to outFd (-1: only check it), with two 1 MiB
 *   buffers freed after the job. It replaces the entry worker threads (entry-workers.ts) when the
 *   addon is there: each held an isolate (~10-20 MB of resident memory) for the same work.
 *   Rejects with a message when the data does not decode, runs past `size` or the file ends.
 */
#define IF_BUF (1u << 20)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int archive_fd, out_fd, method;
  int64_t start, csize, size;
  uint32_t crc;
  int64_t produced;
  const char *error;
  char errbuf[160];
} ijob_t;

static int emit_out(ijob_t *j, const uint8_t *buf, size_t n) {
  if (j->produced + (int64_t)n > j->size) { snprintf(j->errbuf, sizeof j->errbuf, "more data than the %lld bytes announced", (long long)j->size); j->error = j->errbuf; return -1; }
  j->crc = (uint32_t)libdeflate_crc32(j->crc, buf, n);
  for (size_t off = 0; j->out_fd >= 0 && off < n;) {
    ssize_t w = pwrite(j->out_fd, buf + off, n - off, (off_t)(j->produced + (int64_t)off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { snprintf(j->errbuf, sizeof j->errbuf, "%s: %s, write", strerrorname_np(w < 0 ? errno : EIO) ?: "EIO", strerror(w < 0 ? errno : EIO)); j->error = j->errbuf; return -1; }
    off += (size_t)w;
  }
  j->produced += (int64_t)n;
  return 0;
}

static void run_inflate(napi_env env, void *data) {
  (void)env;
  ijob_t *j = data;
  uint8_t *in = malloc(IF_BUF), *out = malloc(IF_BUF);
  z_stream z;
  memset(&z, 0, sizeof z);
  int zinit = 0, zret = Z_OK;
  if (!in || !out) { j->error = "out of memory"; goto done; }
  if (j->method == 8) {
    if (inflateInit2(&z, -15) != Z_OK) { j->error = "out of memory"; goto done; }
    zinit = 1;
  }
  for (int64_t pos = 0; pos < j->csize;) {
    size_t want = (size_t)(j->csize - pos < IF_BUF ? j->csize - pos : IF_BUF);
    ssize_t n = pread(j->archive_fd, in, want, (off_t)(j->start + pos));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { snprintf(j->errbuf, sizeof j->errbuf, "%s: %s, read", strerrorname_np(errno) ?: "EIO", strerror(errno)); j->error = j->errbuf; goto done; }
    if (n == 0) { j->error = "archive is truncated (unexpected end of file)"; goto done; }
    pos += n;
    if (j->method == 0) {
      if (emit_out(j, in, (size_t)n)) goto done;
      continue;
    }
    z.next_in = in;
    z.avail_in = (uInt)n;
    do {
      z.next_out = out;
      z.avail_out = IF_BUF;
      zret = inflate(&z, pos == j->csize ? Z_FINISH : Z_NO_FLUSH);
      if (zret != Z_OK && zret != Z_STREAM_END && zret != Z_BUF_ERROR) { j->error = z.msg ? z.msg : "invalid deflate data"; goto done; }
      if (IF_BUF - z.avail_out > 0 && emit_out(j, out, IF_BUF - z.avail_out)) goto done;
      if (zret == Z_STREAM_END) break;
    } while (z.avail_out == 0 || (pos == j->csize && zret == Z_OK));
    if (zret == Z_STREAM_END) break;
  }
  if (j->method == 8 && zret != Z_STREAM_END) j->error = "unexpected end of file";
done:
  if (zinit) inflateEnd(&z);
  free(in);
  free(out);
}

static void inflate_done(napi_env env, napi_status status, void *data) {
  ijob_t *j = data;
  napi_value v = NULL, a, b;
  if (status != napi_ok && !j->error) j->error = "cancelled";
  if (!j->error) {
    napi_create_array_with_length(env, 2, &v);
    napi_create_uint32(env, j->crc, &a);
    napi_create_double(env, (double)j->produced, &b);
    napi_set_element(env, v, 0, a);
    napi_set_element(env, v, 1, b);
  }
  settle_job(env, j->deferred, j->error, v, NULL, 0, j->work);
  free(j);
}

static napi_value inflate_file(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ijob_t *j = calloc(1, sizeof *j);
  int32_t afd, method, ofd;
  if (!j || argc < 6 || napi_get_value_int32(env, argv[0], &afd) != napi_ok || napi_get_value_int64(env, argv[1], &j->start) != napi_ok ||
      napi_get_value_int64(env, argv[2], &j->csize) != napi_ok || napi_get_value_int32(env, argv[3], &method) != napi_ok ||
      napi_get_value_int64(env, argv[4], &j->size) != napi_ok || napi_get_value_int32(env, argv[5], &ofd) != napi_ok ||
      afd < 0 || j->start < 0 || j->csize < 0 || j->size < 0 || (method != 0 && method != 8)) {
    free(j);
    napi_throw_type_error(env, NULL, "inflateFile(archiveFd, start, csize, method: 0 | 8, size, outFd)");
    return NULL;
  }
  j->archive_fd = afd;
  j->method = method;
  j->out_fd = ofd;
  return queue_job(env, "cachegate_inflate_file", run_inflate, inflate_done, j, &j->deferred, &j->work);
}

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "packFiles", NAPI_AUTO_LENGTH, pack_files, NULL, &f);
  napi_set_named_property(env, exports, "packFiles", f);
  napi_create_function(env, "blockBound", NAPI_AUTO_LENGTH, block_bound, NULL, &f);
  napi_set_named_property(env, exports, "blockBound", f);
  napi_create_function(env, "packBlockAt", NAPI_AUTO_LENGTH, pack_block_at, NULL, &f);
  napi_set_named_property(env, exports, "packBlockAt", f);
  napi_create_function(env, "readFiles", NAPI_AUTO_LENGTH, read_files, NULL, &f);
  napi_set_named_property(env, exports, "readFiles", f);
  napi_create_function(env, "crc32Combine", NAPI_AUTO_LENGTH, crc32_combine_js, NULL, &f);
  napi_set_named_property(env, exports, "crc32Combine", f);
  napi_create_function(env, "writeFiles", NAPI_AUTO_LENGTH, write_files, NULL, &f);
  napi_set_named_property(env, exports, "writeFiles", f);
  napi_create_function(env, "inflateFile", NAPI_AUTO_LENGTH, inflate_file, NULL, &f);
  napi_set_named_property(env, exports, "inflateFile", f);
  napi_value slots;
  napi_create_int32(env, WF_SLOTS, &slots);
  napi_set_named_property(env, exports, "wfSlots", slots);
  napi_value version;
  napi_create_string_utf8(env, "libdeflate " LIBDEFLATE_VERSION_STRING, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "engine", version);
  return exports;
}
