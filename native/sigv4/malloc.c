/*
 * glibc's view of the native heap, for the memory probe of the S3 front door's bench
 * (bench/door-memory-probe.ts; docs/performance.md, "S3 front door, session 9"):
 *
 * mallocStats() -> { arena, hblkhd, uordblks, fordblks, keepcost } in bytes (mallinfo2), or null
 *   arena: bytes of the main and thread arenas taken from the system with brk/mmap; hblkhd: bytes in
 *   blocks mmapped on their own; uordblks: in use; fordblks: free but still held by the arenas.
 *
 * Not there outside glibc >= 2.33 (musl, macOS): then absent from the exports.
 */
#include <node_api.h>
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
static int set_field(napi_env env, napi_value obj, const char *name, size_t v) {
  napi_value n;
  return napi_create_double(env, (double)v, &n) == napi_ok && napi_set_named_property(env, obj, name, n) == napi_ok;
}

static napi_value malloc_stats_js(napi_env env, napi_callback_info info) {
  (void)info;
  struct mallinfo2 m = mallinfo2();
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  if (!set_field(env, obj, "arena", m.arena) || !set_field(env, obj, "hblkhd", m.hblkhd) || !set_field(env, obj, "uordblks", m.uordblks) ||
      !set_field(env, obj, "fordblks", m.fordblks) || !set_field(env, obj, "keepcost", m.keepcost))
    return NULL;
  return obj;
}

int register_malloc(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "mallocStats", NAPI_AUTO_LENGTH, malloc_stats_js, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "mallocStats", fn) != napi_ok)
    return 0;
  return 1;
}
#else
int register_malloc(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return 1;
}
#endif
