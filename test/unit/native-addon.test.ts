/**
 * The native addon, when it is built here, is the one its sources describe: an addon left from
 * older sources (a checkout updated without `npm ci`) is refused by nativeDeflate() and every
 * extraction and zip creation falls back to node:zlib, slower, which benchmarks would report as
 * ours. This fails then, and says how to rebuild.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { ADDON, nativeDeflate } from '../../src/archive/native-deflate.ts';

test('a built native addon is current (else: npm run install)', (t) => {
  if (!fs.existsSync(ADDON)) return t.skip('the addon is not built on this machine (the node:zlib path is tested everywhere)');
  if (process.env.CACHEGATE_NATIVE_DEFLATE === '0') return t.skip('CACHEGATE_NATIVE_DEFLATE=0');
  const n = nativeDeflate();
  assert.ok(n, 'native/build/Release/cachegate_deflate.node is older than native/deflate.c: run `npm run install`');
  for (const f of ['packFiles', 'packBlockAt', 'crc32Combine', 'blockBound', 'writeFiles', 'inflateFile'] as const) assert.equal(typeof n[f], 'function', f);
});
