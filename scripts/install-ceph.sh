#!/bin/bash
# Install the Ceph packages that scripts/start-rgw.sh needs (a real S3 server for the S3 test suite).
# Idempotent: runs `apt-get update` only when a package is missing. Debian 12 ships Ceph 16.2.x.
# Without apt-get (macOS, other distributions), use MinIO through Docker instead: see docs/minio.md.
set -euo pipefail
PKGS=(ceph-mon ceph-osd radosgw ceph-common)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "ceph packages already installed: ${PKGS[*]}"
  exit 0
fi
if ! command -v apt-get > /dev/null 2>&1; then
  cat >&2 <<'MSG'
install-ceph.sh: apt-get is not available, cannot install Ceph RGW here.
To get a real S3 server instead, run MinIO with Docker (docs/minio.md):
  docker compose -f docker-compose.minio.yml up -d minio createbucket
and point the S3 integration tests at it:
  CACHEGATE_TEST_S3_ENDPOINT=http://127.0.0.1:9000 CACHEGATE_TEST_S3_REGION=us-east-1 \
  CACHEGATE_TEST_S3_ACCESS_KEY=cachegate-minio CACHEGATE_TEST_S3_SECRET_KEY=cachegate-minio-secret \
    ./node_modules/.bin/node --test test/integration/s3-*.test.ts
(The RoleARN and KMS cases expect RGW's role arn:aws:iam:::role/cache-writer and key testkey-1.)
MSG
  exit 2
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
echo "installing: ${missing[*]}"
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}"
