/**
 * The resolved-key cache is bounded by bytes as well as entries (issue 14.8): a flood of distinct
 * 4,096-character keys (what one client with a valid token may send) keeps its estimate under
 * RESOLVED_CACHE_BYTES, and the heap it holds stays near that bound.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RESOLVED_CACHE_BYTES, RESOLVED_CACHE_ENTRIES, resolveKey, resolvedCacheStats } from '../../src/keys/resolve.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const ns = { path: '', shared: false, shortToken: 'floodtest', projectId: '1' };

describe('resolved-key cache', () => {
  it('a flood of long keys stays within the byte bound, and the heap with it', () => {
    gc();
    const before = process.memoryUsage().heapUsed;
    // 6 digits + '::' + 2,044 emoji = 4,096 UTF-16 units, the most a key may have; hash mode accepts any length.
    const long = '\u{1F600}'.repeat(2044);
    for (let i = 0; i < 12_000; i++) resolveKey(`${String(i).padStart(6, '0')}::${long}`, ns, true);
    const stats = resolvedCacheStats();
    assert.ok(stats.bytes <= RESOLVED_CACHE_BYTES, `${stats.bytes} > ${RESOLVED_CACHE_BYTES}`);
    assert.ok(stats.entries < RESOLVED_CACHE_ENTRIES, 'long keys: the byte bound, not the entry bound, applies');
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // Generous: twice the bound plus slack for the test's own garbage (10,000 such entries held ~300 MB).
    assert.ok(grown < 2 * RESOLVED_CACHE_BYTES + 16 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB`);
  });

  it('short keys still fill the entry bound, and a repeated key is answered from the cache', () => {
    for (let i = 0; i < RESOLVED_CACHE_ENTRIES + 500; i++) resolveKey(`job-${i}`, ns, false);
    assert.equal(resolvedCacheStats().entries, RESOLVED_CACHE_ENTRIES);
    const a = resolveKey('job-again', ns, false);
    assert.equal(resolveKey('job-again', ns, false), a);
    assert.ok(resolvedCacheStats().bytes <= RESOLVED_CACHE_BYTES);
  });
});
