/**
 * Pins the node:zlib internals that large zip entries are inflated with (raw-inflate.ts:
 * `_handle.writeSync`, `_handle.reset`, `_writeState`): a Node upgrade that changes them fails here.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import { StreamingRawInflater } from '../../src/archive/raw-inflate.ts';

function inflateAll(inf: StreamingRawInflater, compressed: Buffer, inChunk: number, outSize: number): Buffer {
  const out = Buffer.alloc(outSize);
  const parts: Buffer[] = [];
  inf.reset();
  for (let pos = 0; pos < compressed.length; pos += inChunk) {
    const end = Math.min(compressed.length, pos + inChunk);
    inf.write(compressed.subarray(pos, end), end === compressed.length, out, (n) => parts.push(Buffer.from(out.subarray(0, n))));
  }
  return Buffer.concat(parts);
}

describe('StreamingRawInflater (node:zlib internals)', () => {
  it('the private zlib handle this needs is there (Node ' + process.version + ')', () => {
    const s = zlib.createInflateRaw() as unknown as { _handle?: { writeSync?: unknown; reset?: unknown }; _writeState?: unknown };
    assert.equal(typeof s._handle?.writeSync, 'function');
    assert.equal(typeof s._handle?.reset, 'function');
    assert.ok(s._writeState instanceof Uint32Array);
  });

  it('inflates a multi-MiB stream fed in chunks into a small reused buffer, then a second stream after reset', () => {
    const text = Buffer.from('cachegate '.repeat(300_000));
    const random = crypto.randomBytes(3 << 20);
    const inf = new StreamingRawInflater();
    for (const data of [Buffer.concat([text, random]), text.subarray(0, 12345)]) {
      const compressed = zlib.deflateRawSync(data, { level: 1 });
      assert.ok(inflateAll(inf, compressed, 1 << 20, 64 << 10).equals(data));
      assert.ok(inflateAll(inf, compressed, 777, 1 << 20).equals(data));
    }
  });

  it('reports corrupt data as an error, and works again after reset', () => {
    const inf = new StreamingRawInflater();
    assert.throws(() => inflateAll(inf, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), 1024, 1024), /invalid/i);
    const data = Buffer.from('after an error');
    assert.ok(inflateAll(inf, zlib.deflateRawSync(data), 1024, 1024).equals(data));
  });
});
