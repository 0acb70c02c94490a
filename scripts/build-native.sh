#!/bin/bash
# Builds native/ (the libdeflate zip-deflate addon, docs/archive.md "Deflate engines") during
# `npm ci` / `npm install` (the root package's install script). Never fails the install: without
# libdeflate-dev, a compiler or Node's headers, zip creation and extraction use node:zlib, which passes the same
# tests, only slower. CACHEGATE_NATIVE_DEFLATE=0 skips the build.
# npm hands its bundled node-gyp to lifecycle scripts; else one on PATH
if [ -n "${npm_config_node_gyp:-}" ]; then gyp=(node "$npm_config_node_gyp"); else gyp=(node-gyp); fi
# The SigV4 hashing addon (native/sigv4, docs/s3-api.md "Verification cost") needs only a compiler
# and Node's headers. Without it the S3 front door and the presigner hash with node:crypto: same
# signatures, ~2.5 µs more per request. CACHEGATE_NATIVE_SIGV4=0 skips the build.
if [ "${CACHEGATE_NATIVE_SIGV4:-}" != 0 ] && cd "$(dirname "$0")/../native/sigv4" 2>/dev/null; then
  if ! log=$("${gyp[@]}" rebuild 2>&1); then
    echo "$log" | tail -n 15
    echo "cachegate: building the native SigV4 addon failed (see above): signatures are hashed with node:crypto (slower)"
    rm -rf build
  fi
  cd - >/dev/null || exit 0
fi
cd "$(dirname "$0")/../native" || exit 0
if [ "${CACHEGATE_NATIVE_DEFLATE:-}" = 0 ]; then
  exit 0
fi
have_lib=0
for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib /usr/local/lib; do
  [ -e "$d/libdeflate.a" ] && have_lib=1
done
if [ ! -e /usr/include/libdeflate.h ] || [ "$have_lib" = 0 ]; then
  echo "cachegate: libdeflate-dev is not installed: zip creation and extraction will use node:zlib (slower; apt-get install libdeflate-dev, then npm run install)"
  exit 0
fi
if ! log=$("${gyp[@]}" rebuild 2>&1); then
  echo "$log" | tail -n 15
  echo "cachegate: building the native deflate addon failed (see above): zip creation and extraction will use node:zlib (slower)"
  rm -rf build
fi
exit 0
