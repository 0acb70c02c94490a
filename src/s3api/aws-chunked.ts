/**
 * Decodes an `aws-chunked` request body (x-amz-content-sha256 STREAMING-…), as a Transform that
 * emits the object's bytes:
 *
 *   <hex size>[;chunk-signature=<sig>]\r\n <data> \r\n  …  0[;chunk-signature=<sig>]\r\n [trailers]\r\n
 *
 * With signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) each chunk's signature is checked
 * against the chain that starts at the request's seed signature, before the next chunk is read; a
 * trailer block (STREAMING-…-TRAILER) is collected into `trailers`, and its own signature checked when
 * the payload is signed. Memory: one chunk header line (at most 4 KiB), the trailer block (at most
 * 16 KiB) and the running hash; data is passed on as it arrives.
 */
import { createHash, hash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { hmacHex } from '../sign/sigv4.ts';
import { S3Error } from './errors.ts';
import { sameHex, type VerifiedSignature } from './sigv4-verify.ts';

const MAX_LINE = 4096;
/** The whole trailer block (its lines are kept until the body ends): as much as request headers get. */
const MAX_TRAILER = 16 * 1024;
const EMPTY_SHA256 = hash('sha256', '', 'hex');
const CHUNK_HEADER = /^([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?$/;

export type ChunkSigning = VerifiedSignature['seed'] | undefined;

const incomplete = (why: string): S3Error => new S3Error('IncompleteBody', 400, `the aws-chunked body is malformed: ${why}`);

export class AwsChunkedDecoder extends Transform {
  /** Trailer headers (lower-case names), filled when the body has ended. */
  readonly trailers = new Map<string, string>();
  private readonly signing: ChunkSigning;
  private readonly expectTrailer: boolean;
  private previous: string;
  private state: 'header' | 'data' | 'data-crlf' | 'trailer' | 'done' = 'header';
  private line = '';
  private trailerBytes = 0;
  private remaining = 0;
  private chunkSignature = '';
  private chunkHash: Hash | undefined;

  constructor(signing: ChunkSigning, expectTrailer: boolean) {
    super();
    this.signing = signing;
    this.expectTrailer = expectTrailer;
    this.previous = signing?.signature ?? '';
  }

  override _transform(buf: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(buf);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    cb(this.state === 'done' ? null : incomplete('the body ended before its final chunk'));
  }

  private consume(buf: Buffer): void {
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - i);
        const piece = buf.subarray(i, i + n);
        this.chunkHash?.update(piece);
        this.push(piece);
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) {
          this.endChunk();
          this.state = 'data-crlf';
        }
        continue;
      }
      if (this.state === 'done') throw incomplete('bytes after the final chunk');
      const nl = buf.indexOf(0x0a, i);
      const end = nl === -1 ? buf.length : nl + 1;
      this.line += buf.toString('latin1', i, end);
      i = end;
      if (this.line.length > MAX_LINE) throw incomplete('a chunk header or trailer line is too long');
      if (nl === -1) continue;
      const line = this.line.endsWith('\r\n') ? this.line.slice(0, -2) : this.line.slice(0, -1);
      this.line = '';
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (this.state === 'data-crlf') {
      if (line !== '') throw incomplete('chunk data longer than its stated size');
      this.state = 'header';
      return;
    }
    if (this.state === 'trailer') {
      if (line === '') {
        this.checkTrailerSignature();
        this.state = 'done';
        return;
      }
      if (!this.expectTrailer) throw incomplete('trailer lines in a body that announced none');
      this.trailerBytes += line.length + 2;
      if (this.trailerBytes > MAX_TRAILER) throw incomplete(`the trailer is over ${MAX_TRAILER} bytes`);
      const colon = line.indexOf(':');
      if (colon <= 0) throw incomplete('a trailer line is not name:value');
      this.trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      return;
    }
    const m = CHUNK_HEADER.exec(line);
    if (!m) throw incomplete('a chunk header is not <hex size>[;chunk-signature=<signature>]');
    if (this.signing && m[2] === undefined) throw new S3Error('SignatureDoesNotMatch', 403, 'a chunk of a signed aws-chunked body has no chunk-signature');
    this.remaining = parseInt(m[1], 16);
    this.chunkSignature = m[2] ?? '';
    this.chunkHash = this.signing ? createHash('sha256') : undefined;
    if (this.remaining > 0) {
      this.state = 'data';
      return;
    }
    this.endChunk();
    this.state = 'trailer'; // trailer lines (when announced), then an empty line
  }

  /** Checks the signature of the chunk just read: HMAC over the previous signature and the chunk's SHA-256. */
  private endChunk(): void {
    const s = this.signing;
    if (!s) return;
    const digest = (this.chunkHash as Hash).digest('hex');
    const expected = hmacHex(s.key, `AWS4-HMAC-SHA256-PAYLOAD\n${s.amzDate}\n${s.scope}\n${this.previous}\n${EMPTY_SHA256}\n${digest}`);
    if (!sameHex(expected, this.chunkSignature)) throw new S3Error('SignatureDoesNotMatch', 403, 'a chunk signature of the aws-chunked body does not match');
    this.previous = this.chunkSignature;
  }

  private checkTrailerSignature(): void {
    const s = this.signing;
    if (!s || !this.expectTrailer) return;
    const given = this.trailers.get('x-amz-trailer-signature');
    if (given === undefined) throw new S3Error('SignatureDoesNotMatch', 403, 'the trailer of a signed aws-chunked body has no x-amz-trailer-signature');
    let canonical = '';
    for (const [k, v] of this.trailers) if (k !== 'x-amz-trailer-signature') canonical += `${k}:${v}\n`;
    const expected = hmacHex(s.key, `AWS4-HMAC-SHA256-TRAILER\n${s.amzDate}\n${s.scope}\n${this.previous}\n${hash('sha256', canonical, 'hex')}`);
    if (!sameHex(expected, given)) throw new S3Error('SignatureDoesNotMatch', 403, 'the trailer signature of the aws-chunked body does not match');
  }
}
