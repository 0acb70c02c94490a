/**
 * The node:zlib internals that the fallback path still uses, for measured reasons (docs/archive.md
 * "Memory bound"): block-worker.ts deflates large entries' blocks through a stream's
 * `_handle.writeSync` into pooled buffers, and compress.ts's SmallDecoder inflates small entries
 * the same way. If a Node upgrade renames or reshapes them, this fails before any archive does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { deflateInto, type ZlibInternals } from '../../src/archive/block-worker.ts';
import { SmallDecoder, METHOD_DEFLATE } from '../../src/archive/compress.ts';

test('a node:zlib stream still has _handle.writeSync, _handle.onerror and a Uint32Array _writeState', () => {
  for (const s of [zlib.createDeflateRaw(), zlib.createInflateRaw()]) {
    const z = s as unknown as Partial<ZlibInternals>;
    assert.equal(typeof z._handle?.writeSync, 'function');
    assert.ok('onerror' in (z._handle ?? {}));
    assert.ok(z._writeState instanceof Uint32Array && z._writeState.length >= 2);
    s.close();
  }
});

test('deflateInto: blocks primed with the previous tail and sync-flushed concatenate into one deflate stream', () => {
  const data = Buffer.from(Array.from({ length: 40000 }, (_, i) => `row ${i % 500} of the block test\n`).join(''));
  const half = data.length >> 1;
  const out1 = new Uint8Array(half + 1024);
  const out2 = new Uint8Array(half + 1024);
  const n1 = deflateInto(1, data.subarray(0, half), out1, undefined, false);
  const n2 = deflateInto(1, data.subarray(half), out2, data.subarray(half - 32768, half), true);
  const joined = Buffer.concat([out1.subarray(0, n1), out2.subarray(0, n2)]);
  assert.ok(zlib.inflateRawSync(joined).equals(data));
  assert.throws(() => deflateInto(1, data, new Uint8Array(10), undefined, true), /larger than its buffer/);
});

test('SmallDecoder inflates through the reused handle and refuses more data than announced', () => {
  const data = Buffer.from('small entry '.repeat(500));
  const packed = zlib.deflateRawSync(data);
  const d = new SmallDecoder();
  assert.ok(d.decode(METHOD_DEFLATE, packed, data.length).equals(data));
  assert.throws(() => d.decode(METHOD_DEFLATE, packed, data.length - 1), /more data/);
});
