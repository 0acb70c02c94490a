#!/bin/bash
# System packages the test suite uses, installed idempotently (apt-get only when something is missing):
# the real archive tools for interop tests (zip, unzip, zstd, tar), openssl and curl, and Ceph RGW
# (scripts/install-ceph.sh) as the real S3 server. Without apt-get it says what to do instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# command → Debian package; a command already on PATH (e.g. a pyenv python3) counts as installed.
TOOLS=(zip:zip unzip:unzip zstd:zstd tar:tar openssl:openssl curl:curl python3:python3 diff:diffutils)
missing=()
for t in "${TOOLS[@]}"; do
  command -v "${t%%:*}" > /dev/null 2>&1 || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get > /dev/null 2>&1; then
    echo "install-deps.sh: missing ${missing[*]} and no apt-get: install them with your package manager" >&2
    exit 2
  fi
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Real S3 clients for the S3 front door tests (docs/s3-api.md) and the command `cachegate lifecycle`
# prints (lifecycle-rgw.test.ts), checked by path: a pyenv `aws` on PATH
# is the v1 CLI, the tests use Debian's v2 at /usr/bin/aws and its /usr/bin/python3 for boto3.
S3_CLIENTS=(/usr/bin/aws:awscli /usr/lib/python3/dist-packages/boto3:python3-boto3 /usr/bin/go:golang-go
  /usr/share/gocode/src/github.com/minio/minio-go/v7:golang-github-minio-minio-go-v7-dev
  # and the Go reference of GitLab Runner's helper archive code (bench/gitlab-ref), built the same way
  /usr/share/gocode/src/github.com/klauspost/compress/zstd:golang-github-klauspost-compress-dev
  /usr/share/gocode/src/golang.org/x/sync/errgroup:golang-golang-x-sync-dev /usr/share/gocode/src/golang.org/x/sys/unix:golang-golang-x-sys-dev)
# The native deflate addon for zip creation (native/, built by npm ci through scripts/build-native.sh;
# without these it is skipped and zip creation uses node:zlib): static libdeflate and zlib, a C toolchain.
NATIVE=(/usr/include/libdeflate.h:libdeflate-dev /usr/include/zlib.h:zlib1g-dev /usr/bin/make:make /usr/bin/gcc:gcc /usr/bin/g++:g++)
missing=()
for t in "${S3_CLIENTS[@]}" "${NATIVE[@]}"; do
  [ -e "${t%%:*}" ] || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get > /dev/null 2>&1; then
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; }
fi
bash scripts/install-ceph.sh
