/**
 * Checks an upload's bytes against what the client said they are, before the last bytes reach the
 * backend: `x-amz-checksum-<algorithm>` (as a header, or as an aws-chunked trailer announced in
 * `x-amz-trailer`), `Content-MD5`, a hex `x-amz-content-sha256`, and the declared length. The
 * verifier holds back the most recent piece of data until the end has been checked, so a mismatch
 * fails the body stream before the backend has seen all of it: the adapter aborts and stores nothing.
 *
 * CRC32 comes from node:zlib; CRC32C and CRC64NVME from @aws-sdk/checksums, the module the AWS SDK
 * itself computes them with (already in the tree through @aws-sdk/client-s3; no cloud client in it).
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import { Crc32c, Crc64Nvme } from '@aws-sdk/checksums/crc';
import { S3Error } from './errors.ts';

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

interface Running {
  update(b: Buffer): void;
  /** Base64 of the big-endian digest, as the x-amz-checksum-* headers carry it. */
  base64(): Promise<string>;
}

function uint32Base64(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString('base64');
}

/** A digest is final once taken: the result is kept for a second reader (sha256 as checksum and as payload hash). */
function running(algorithm: ChecksumAlgorithm | 'md5'): Running {
  const r = runningOnce(algorithm);
  let result: Promise<string> | undefined;
  return { update: (b) => r.update(b), base64: () => (result ??= r.base64()) };
}

function runningOnce(algorithm: ChecksumAlgorithm | 'md5'): Running {
  switch (algorithm) {
    case 'crc32': {
      let v = 0;
      return { update: (b) => { v = crc32(b, v); }, base64: async () => uint32Base64(v) };
    }
    case 'crc32c':
    case 'crc64nvme': {
      const c = algorithm === 'crc32c' ? new Crc32c() : new Crc64Nvme();
      return { update: (b) => c.update(b), base64: async () => Buffer.from(await c.digest()).toString('base64') };
    }
    default: {
      const h = createHash(algorithm);
      return { update: (b) => { h.update(b); }, base64: async () => h.digest('base64') };
    }
  }
}

export interface Expectations {
  /** Checksums given as headers: algorithm → base64. */
  headers: Map<ChecksumAlgorithm, string>;
  /** Algorithm announced in x-amz-trailer, whose value arrives with the trailers. */
  trailer: ChecksumAlgorithm | undefined;
  /** Content-MD5 (base64). */
  md5: string | undefined;
  /** x-amz-content-sha256 when it is a hex digest of the payload (not a STREAMING-… or UNSIGNED-PAYLOAD marker). */
  sha256Hex: string | undefined;
  /** The length the client declared for the object's bytes (Content-Length, or x-amz-decoded-content-length). */
  length: number | undefined;
}

/** Reads what the request headers promise about the body. Throws for an unknown algorithm or a malformed value. */
export function expectationsOf(header: (name: string) => string | undefined, payloadHash: string, length: number | undefined): Expectations {
  const headers = new Map<ChecksumAlgorithm, string>();
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = header(`x-amz-checksum-${a}`);
    if (v !== undefined) headers.set(a, v);
  }
  let trailer: ChecksumAlgorithm | undefined;
  const announced = header('x-amz-trailer');
  if (announced !== undefined) {
    const a = announced.trim().toLowerCase().replace(/^x-amz-checksum-/, '');
    if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(a)) throw new S3Error('InvalidRequest', 400, `x-amz-trailer "${announced}" is not a supported checksum (x-amz-checksum-${CHECKSUM_ALGORITHMS.join('|')})`);
    trailer = a as ChecksumAlgorithm;
  }
  const md5 = header('content-md5');
  if (md5 !== undefined && !/^[A-Za-z0-9+/]{22}==$/.test(md5)) throw new S3Error('InvalidDigest', 400, 'The Content-MD5 you specified was invalid.');
  const sha256Hex = /^[0-9a-f]{64}$/.test(payloadHash) ? payloadHash : undefined;
  return { headers, trailer, md5, sha256Hex, length };
}

const badDigest = (what: string): S3Error => new S3Error('BadDigest', 400, `The ${what} you specified did not match the calculated checksum.`);

export class BodyVerifier extends Transform {
  private readonly expect: Expectations;
  private readonly trailers: () => Map<string, string>;
  private readonly sums = new Map<string, Running>();
  private held: Buffer | undefined;
  bytes = 0;

  /** `trailers` is read at the end (the aws-chunked decoder fills it). */
  constructor(expect: Expectations, trailers: () => Map<string, string> = () => new Map()) {
    super();
    this.expect = expect;
    this.trailers = trailers;
    for (const a of expect.headers.keys()) this.sums.set(a, running(a));
    if (expect.trailer) this.sums.set(expect.trailer, running(expect.trailer));
    if (expect.md5 !== undefined) this.sums.set('md5', running('md5'));
    if (expect.sha256Hex !== undefined && !this.sums.has('sha256')) this.sums.set('sha256', running('sha256'));
  }

  override _transform(buf: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += buf.length;
    if (this.expect.length !== undefined && this.bytes > this.expect.length) {
      cb(new S3Error('IncompleteBody', 400, 'the body is longer than its declared length'));
      return;
    }
    for (const s of this.sums.values()) s.update(buf);
    if (this.held) this.push(this.held);
    this.held = buf;
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.check().then(() => {
      if (this.held) this.push(this.held);
      this.held = undefined;
      cb();
    }, (err: Error) => cb(err));
  }

  private async check(): Promise<void> {
    if (this.expect.length !== undefined && this.bytes !== this.expect.length) {
      throw new S3Error('IncompleteBody', 400, `You did not provide the number of bytes specified by the Content-Length HTTP header (${this.bytes} of ${this.expect.length})`);
    }
    for (const [a, want] of this.expect.headers) {
      if ((await (this.sums.get(a) as Running).base64()) !== want) throw badDigest(`x-amz-checksum-${a}`);
    }
    if (this.expect.trailer) {
      const want = this.trailers().get(`x-amz-checksum-${this.expect.trailer}`);
      if (want === undefined) throw new S3Error('IncompleteBody', 400, `the body ended without the x-amz-checksum-${this.expect.trailer} trailer it announced`);
      if (!this.expect.headers.has(this.expect.trailer) && (await (this.sums.get(this.expect.trailer) as Running).base64()) !== want) throw badDigest(`x-amz-checksum-${this.expect.trailer}`);
    }
    if (this.expect.md5 !== undefined && (await (this.sums.get('md5') as Running).base64()) !== this.expect.md5) throw badDigest('Content-MD5');
    if (this.expect.sha256Hex !== undefined) {
      const hex = Buffer.from(await (this.sums.get('sha256') as Running).base64(), 'base64').toString('hex');
      if (hex !== this.expect.sha256Hex) throw new S3Error('XAmzContentSHA256Mismatch', 400, "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  }
}
