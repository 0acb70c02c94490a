/*
 * cachegate_sigv4: the hashing of one SigV4 signature in one call, on the SHA-256 of the OpenSSL
 * that Node itself links (its binary exports SHA256_Init/Update/Final; nothing is linked here).
 * Why native: node:crypto's one-shot hash() costs ~0.8 µs per call whatever the length (OpenSSL 3's
 * EVP fetch and the JS/C++ crossing), and a signature needs three of them; here all three cost one
 * N-API call (docs/s3-api.md, "Verification cost").
 *
 * signature(key, prefix, canonicalRequest) -> string
 *   hex(HMAC-SHA256(key, prefix + hex(SHA-256(canonicalRequest)))): `key` the 32-byte signing key
 *   (a Buffer), `prefix` the string to sign up to its last line ("AWS4-HMAC-SHA256\n<date>\n<scope>\n").
 *   Strings are hashed as their UTF-8 bytes, as node:crypto does.
 *
 * No state: context-aware (worker threads may load it). malloc.c adds glibc's heap statistics and
 * trim to the same addon (one build, one load).
 */
#define NAPI_VERSION 8
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: the low-level calls skip EVP's per-call fetch */
#include <node_api.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define STACK_BYTES 4096

int register_malloc(napi_env env, napi_value exports); /* malloc.c */
int register_accept(napi_env env, napi_value exports); /* accept.c */

static const char HEX[] = "0123456789abcdef";

static void to_hex(const unsigned char *d, char *out) {
  for (int i = 0; i < 32; i++) {
    out[2 * i] = HEX[d[i] >> 4];
    out[2 * i + 1] = HEX[d[i] & 15];
  }
}

/* The UTF-8 bytes of a JS string into SHA-256 `c`; 0 on failure. */
static int update_string(napi_env env, napi_value v, SHA256_CTX *c) {
  char stack[STACK_BYTES];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, stack, sizeof stack, &len) != napi_ok) return 0;
  /* A truncated copy stops at a character boundary: up to 4 bytes short of the buffer's end. */
  if (len + 5 <= sizeof stack) return SHA256_Update(c, stack, len);
  /* Possibly truncated: ask for the length, then read it whole. */
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return 0;
  char *heap = malloc(len + 1);
  if (heap == NULL) return 0;
  int ok = napi_get_value_string_utf8(env, v, heap, len + 1, &len) == napi_ok && SHA256_Update(c, heap, len);
  free(heap);
  return ok;
}

static napi_value signature(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) {
    napi_throw_type_error(env, NULL, "signature(key, prefix, canonicalRequest)");
    return NULL;
  }
  bool is_buffer = false;
  unsigned char *key = NULL;
  size_t key_len = 0;
  if (napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], (void **)&key, &key_len) != napi_ok || key_len != 32) {
    napi_throw_type_error(env, NULL, "the key must be a 32-byte Buffer");
    return NULL;
  }
  SHA256_CTX c;
  unsigned char digest[32];
  char hex[64];
  /* SHA-256 of the canonical request. */
  SHA256_Init(&c);
  if (!update_string(env, argv[2], &c)) goto bad_string;
  SHA256_Final(digest, &c);
  to_hex(digest, hex);
  /* HMAC (RFC 2104): the 32-byte key zero-padded to SHA-256's 64-byte block, XORed with the pads. */
  unsigned char pad[64];
  memset(pad, 0x36, sizeof pad);
  for (int i = 0; i < 32; i++) pad[i] ^= key[i];
  SHA256_Init(&c);
  SHA256_Update(&c, pad, sizeof pad);
  if (!update_string(env, argv[1], &c)) goto bad_string;
  SHA256_Update(&c, hex, sizeof hex);
  SHA256_Final(digest, &c);
  memset(pad, 0x5c, sizeof pad);
  for (int i = 0; i < 32; i++) pad[i] ^= key[i];
  SHA256_Init(&c);
  SHA256_Update(&c, pad, sizeof pad);
  SHA256_Update(&c, digest, sizeof digest);
  SHA256_Final(digest, &c);
  to_hex(digest, hex);
  napi_value out;
  if (napi_create_string_latin1(env, hex, sizeof hex, &out) != napi_ok) return NULL;
  return out;
bad_string:
  napi_throw_type_error(env, NULL, "prefix and canonicalRequest must be strings");
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "signature", NAPI_AUTO_LENGTH, signature, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "signature", fn) != napi_ok) return NULL;
  if (!register_malloc(env, exports)) return NULL;
  if (!register_accept(env, exports)) return NULL;
  return exports;
}
