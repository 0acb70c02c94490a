/**
 * Set-user-ID, set-group-ID and sticky bits stored in an archive are never applied on extraction
 * (session 7 review). The helper often extracts as root (the Docker executor's helper container)
 * and does not restore owners, so a 04755 file cached by an unprivileged job came back as a
 * set-user-ID root program in the next job's working tree. GitLab's own helper (saracen/fastzip)
 * applies the permission bits only. Archives are built by Python's zipfile/tarfile and the zstd CLI;
 * small files (background writes on and off), a large file and directories, zip and tar.zst.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { extractZip } from '../../src/archive/zip-reader.ts';
import { extractTarZstd } from '../../src/archive/tar-reader.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';
import { buildArchive, type EvilEntry } from '../fixtures/archive/evil.ts';

const spec: EvilEntry[] = [
  { name: 'bin/', kind: 'd', mode: 0o2775 },
  { name: 'shared/', kind: 'd', mode: 0o1777 },
  { name: 'bin/suid', kind: 'f', data: '#!/bin/sh\nid\n', mode: 0o4755 },
  { name: 'bin/suid-sgid', kind: 'f', data: 'x', mode: 0o6711 },
  { name: 'bin/sgid', kind: 'f', data: 'y', mode: 0o2750 },
  { name: 'shared/sticky', kind: 'f', data: 'z', mode: 0o1644 },
  // over the small-entry limit: written by the streaming path (zip: native inflateFile or a worker)
  { name: 'bin/large-suid', kind: 'f', data: 'L'.repeat(3 << 20), mode: 0o4755 },
  { name: 'plain', kind: 'f', data: 'p', mode: 0o640 },
];

for (const kind of ['zip', 'tar'] as const) {
  for (const batches of [true, false]) {
    test(`${kind}: set-user-ID, set-group-ID and sticky bits are dropped, permission bits kept (background writes ${batches ? 'on' : 'off'})`, async () => {
      const tmp = await tempDir();
      try {
        const archive = path.join(tmp, kind === 'zip' ? 'a.zip' : 'a.tar.zst');
        buildArchive(kind, archive, spec);
        const work = path.join(tmp, 'work');
        await (kind === 'zip' ? extractZip : extractTarZstd)(archive, work, batches ? {} : { writeBatches: { inFlight: 0 } });
        const octal = (m: number): string => `0${m.toString(8)}`;
        const got = Object.fromEntries(spec.map((e) => [e.name, octal(fs.lstatSync(path.join(work, e.name)).mode & 0o7777)]));
        assert.deepEqual(got, Object.fromEntries(spec.map((e) => [e.name, octal(e.mode! & 0o777)])));
      } finally {
        await rmrf(tmp);
      }
    });
  }
}
