#!/bin/bash
# Throw-away single-node Ceph RGW (real S3 SigV4 + STS AssumeRole + SSE-KMS "testing" backend) on 127.0.0.1.
# Needs: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common   (Debian 12: Ceph 16.2.15)
# Usage: start-rgw.sh <dir> [port]   -> PIDs in <dir>/*.pid ; stop with stop-rgw.sh <dir>
#   env MONPORT (default 6789): the monitor's port; pick free ports to run several clusters at once.
# Copied from the shared test notes so that the project's tests run from its own checkout.
set -euo pipefail
trap 'echo "start-rgw.sh: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
D=${1:?dir}; PORT=${2:-${RGW_PORT:-8000}}; MONPORT=${MONPORT:-6789}
for b in monmaptool ceph-mon ceph-osd radosgw radosgw-admin ceph; do
  command -v "$b" > /dev/null 2>&1 || { echo "start-rgw.sh: '$b' not found; install Ceph with scripts/install-ceph.sh (Debian/Ubuntu), or see docs/minio.md" >&2; exit 3; }
done
case "$D" in /*) ;; *) D="$PWD/$D" ;; esac
case "$D" in /|/tmp|/tmp/|"$HOME"|"$HOME"/) echo "start-rgw.sh: refusing to use $D (it is wiped first)" >&2; exit 2 ;; esac
rm -rf "$D"; mkdir -p "$D"/{run,log,mon,osd/osd.0,rgw}; cd "$D"
FSID=$(cat /proc/sys/kernel/random/uuid); KMSKEY=$(head -c 32 /dev/urandom | base64)
cat > ceph.conf <<CONF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MONPORT
mon initial members = a
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
mon data = $D/mon/\$name
osd data = $D/osd/\$name
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
# The monitor's free-disk check (warn below 30 % of the disk free by default) kept the OSD from
# booting here ('wrong fsid' in osd.0.log, 'MON_DISK_LOW'; reproduced at 29.7 % free, fine at 30.9 %):
# this throwaway cluster keeps its data in memory, so only a nearly full disk matters.
mon data avail warn = 2
mon data avail crit = 1
[client.rgw.x]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $D/rgw
rgw sts key = abcdefghijklmnop
rgw s3 auth use sts = true
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = testkey-1=$KMSKEY
rgw crypt require ssl = false
CONF
C="-c $D/ceph.conf"
monmaptool --create --add a v1:127.0.0.1:$MONPORT --fsid $FSID monmap > log/monmap.out
ceph-mon $C --mkfs -i a --monmap monmap
ceph-mon $C -f -i a > log/mon.out 2>&1 & echo $! > mon.pid
OSDUUID=$(cat /proc/sys/kernel/random/uuid)
osd_ok=0
for i in $(seq 1 120); do ceph $C --connect-timeout 2 osd new $OSDUUID > /dev/null 2>&1 && { osd_ok=1; break; }; sleep 0.5; done
if [ $osd_ok -ne 1 ]; then echo "start-rgw.sh: the monitor did not accept 'osd new' (port $MONPORT busy?); logs in $D/log" >&2; tail -n 20 log/mon.out >&2 2>/dev/null; exit 5; fi
ceph-osd $C -i 0 --mkfs --osd-uuid $OSDUUID > log/mkfs.out 2>&1
ceph-osd $C -f -i 0 > log/osd.out 2>&1 & echo $! > osd.pid
radosgw $C -f -n client.rgw.x > log/rgw.out 2>&1 & echo $! > rgw.pid
ok=0
for i in $(seq 1 ${RGW_WAIT_STEPS:-360}); do
  curl -sf -o /dev/null http://127.0.0.1:$PORT/ && { ok=1; break; }
  kill -0 "$(cat rgw.pid)" 2>/dev/null || { echo "start-rgw.sh: radosgw exited; last lines of $D/log/rgw.out and client.rgw.x.log:" >&2; tail -n 20 log/rgw.out log/client.rgw.x.log >&2 2>/dev/null; exit 4; }
  sleep 0.5
done
if [ $ok -ne 1 ]; then echo "start-rgw.sh: RGW did not answer on 127.0.0.1:$PORT within $(( ${RGW_WAIT_STEPS:-360} / 2 )) s; logs in $D/log" >&2; tail -n 20 log/client.rgw.x.log >&2 2>/dev/null; exit 4; fi
radosgw-admin $C user create --uid=ci --display-name=CI --access-key=CIACCESSKEY --secret=CISECRETKEY > /dev/null 2>&1
radosgw-admin $C caps add --uid=ci --caps="roles=*;user-policy=*" > /dev/null 2>&1
radosgw-admin $C role create --role-name=cache-writer --assume-role-policy-doc='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/ci"]},"Action":["sts:AssumeRole"]}]}' > /dev/null 2>&1
radosgw-admin $C role-policy put --role-name=cache-writer --policy-name=all --policy-doc='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}' > /dev/null 2>&1
echo "RGW ready: http://127.0.0.1:$PORT  access=CIACCESSKEY secret=CISECRETKEY role=arn:aws:iam:::role/cache-writer kms-key=testkey-1"
