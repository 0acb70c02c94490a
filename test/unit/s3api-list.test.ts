/**
 * ListObjects with a delimiter reads the backend's list in whole pages: one call per common prefix
 * made a list of 1,000 prefixes 1,000 backend calls, and the local backend's list reads every
 * object's header per call. A fast in-process adapter counts the calls; the listing itself is
 * exercised against the real backends in test/support/s3api-suite.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CacheAdapter, ListOptions } from '../../src/adapter.ts';
import { listObjects, listRequest } from '../../src/s3api/bucket-ops.ts';

function listingAdapter(names: string[]): { adapter: CacheAdapter; calls: () => number } {
  let calls = 0;
  const sorted = [...names].sort();
  const adapter = {
    kind: 'local',
    list: async (prefix: string, opts: ListOptions) => {
      calls++;
      const after = sorted.filter((n) => n.startsWith(prefix) && (opts.startAfter === undefined || n > opts.startAfter));
      return { objects: after.slice(0, opts.max).map((name) => ({ name, size: 1, lastModified: new Date(0) })), truncated: after.length > opts.max };
    },
  } as unknown as CacheAdapter;
  return { adapter, calls: () => calls };
}

describe('S3 front door: ListObjects with a delimiter', () => {
  it('200 common prefixes take a few backend calls, not one each, and the answer is the same', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `ns/d${String(i).padStart(3, '0')}/a`).concat(['ns/top', 'ns/d005/b', 'ns/d005/c']);
    const { adapter, calls } = listingAdapter(names);
    const q = new Map([['list-type', '2'], ['prefix', 'ns/'], ['delimiter', '/']]);
    const out = (await listObjects(listRequest(q, { adapter, timeoutMs: 5000, bucket: 'b' }))).body as string;
    assert.equal((out.match(/<CommonPrefixes>/g) ?? []).length, 200);
    assert.equal((out.match(/<Contents>/g) ?? []).length, 1);
    assert.match(out, /<IsTruncated>false<\/IsTruncated>/);
    assert.ok(calls() <= 3, `${calls()} backend list calls`);
  });

  it('max-keys cuts the answer and the continuation token resumes after the last common prefix', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `ns/d${String(i).padStart(3, '0')}/a`);
    const { adapter } = listingAdapter(names);
    const first = (await listObjects(listRequest(new Map([['list-type', '2'], ['prefix', 'ns/'], ['delimiter', '/'], ['max-keys', '10']]), { adapter, timeoutMs: 5000, bucket: 'b' }))).body as string;
    assert.equal((first.match(/<CommonPrefixes>/g) ?? []).length, 10);
    const token = /<NextContinuationToken>([^<]+)</.exec(first)?.[1] as string;
    const second = (await listObjects(listRequest(new Map([['list-type', '2'], ['prefix', 'ns/'], ['delimiter', '/'], ['max-keys', '100'], ['continuation-token', token]]), { adapter, timeoutMs: 5000, bucket: 'b' }))).body as string;
    assert.deepEqual([...second.matchAll(/<Prefix>(ns\/d\d+\/)<\/Prefix>/g)].map((m) => m[1]), names.slice(10).map((n) => n.slice(0, -1)));
  });
});
