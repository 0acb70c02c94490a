#!/bin/bash
# System packages the test suite uses, installed idempotently (apt-get only when something is missing):
# the real archive tools for interop tests (zip, unzip, zstd, tar), openssl and curl, and Ceph RGW
# (scripts/install-ceph.sh) as the real S3 server. Without apt-get it says what to do instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(zip unzip zstd tar openssl curl ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
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
bash scripts/install-ceph.sh
