/*
 * acceptPending(fd, max) -> number[]: accepts up to `max` connections already waiting on the
 * listening socket `fd` (non-blocking, close-on-exec), and returns their descriptors; an empty
 * array when none waits. Used by src/service/accept-burst.ts: libuv accepts one connection per
 * event-loop iteration (since libuv 1.45, Node 20), and under load an iteration of the service can
 * take a second, so 200 clients connecting at once waited up to minutes in the accept queue.
 *
 * Stops at EAGAIN or at any other error but a connection aborted before it was accepted: the
 * error is left for libuv's own accept() to meet and report.
 */
#define _GNU_SOURCE
#include <node_api.h>
#if defined(__linux__)
#include <errno.h>
#include <sys/socket.h>

static napi_value accept_pending_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, max = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &max) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "acceptPending(fd, max): two integers, fd >= 0");
    return NULL;
  }
  napi_value out;
  if (napi_create_array(env, &out) != napi_ok) return NULL;
  uint32_t n = 0;
  while ((int32_t)n < max) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    napi_value v;
    if (napi_create_int32(env, c, &v) != napi_ok || napi_set_element(env, out, n, v) != napi_ok) return NULL;
    n++;
  }
  return out;
}

int register_accept(napi_env env, napi_value exports) {
  napi_value fn;
  return napi_create_function(env, "acceptPending", NAPI_AUTO_LENGTH, accept_pending_js, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, "acceptPending", fn) == napi_ok;
}
#else
int register_accept(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return 1;
}
#endif
