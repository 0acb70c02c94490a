/**
 * A file entry whose name is the working directory itself (".", "./.", or an empty zip name) is
 * refused with a clear UnsafeEntryError, on every write path (session 7 review: it failed with
 * "writeFiles: a name must be one path component" from the native addon, or "EISDIR … open
 * '/proc/self/fd/23/'" without it). The working directory and what it held stay as they were.
 * Archives are built by Python's zipfile/tarfile and the zstd CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { extractZip } from '../../src/archive/zip-reader.ts';
import { extractTarZstd } from '../../src/archive/tar-reader.ts';
import { UnsafeEntryError } from '../../src/archive/safe-writer.ts';
import { rmrf, tempDir } from '../fixtures/archive/tree.ts';
import { buildArchive } from '../fixtures/archive/evil.ts';

const names = { zip: ['.', '', './.'], tar: ['.', './.'] } as const;

for (const kind of ['zip', 'tar'] as const) {
  for (const name of names[kind]) {
    for (const [size, label] of [[10, 'small'], [3 << 20, 'large']] as const) {
      test(`${kind}: a ${label} file entry named ${JSON.stringify(name)} (the working directory) is refused clearly, background writes on and off`, async () => {
        for (const batches of [true, false]) {
          const tmp = await tempDir();
          try {
            const archive = path.join(tmp, kind === 'zip' ? 'a.zip' : 'a.tar.zst');
            buildArchive(kind, archive, [{ name: 'ok.txt', kind: 'f', data: 'ok' }, { name, kind: 'f', data: 'x'.repeat(size) }]);
            const work = path.join(tmp, 'work');
            fs.mkdirSync(work);
            fs.writeFileSync(path.join(work, 'kept.txt'), 'kept');
            await assert.rejects(
              (kind === 'zip' ? extractZip : extractTarZstd)(archive, work, batches ? {} : { writeBatches: { inFlight: 0 } }),
              (err: Error) => err instanceof UnsafeEntryError && /working directory/.test(err.message),
            );
            assert.ok(fs.lstatSync(work).isDirectory());
            assert.equal(fs.readFileSync(path.join(work, 'kept.txt'), 'utf8'), 'kept');
          } finally {
            await rmrf(tmp);
          }
        }
      });
    }
  }
}
