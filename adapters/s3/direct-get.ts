/**
 * GetObject in proxy mode without the AWS SDK: the profile's presigned GET URL (presigner.ts: the
 * same target, region, credentials and signature a client gets in presign mode) sent with node:http.
 *
 * Why: the SDK's per-request work (middleware stack, endpoint rules, signing-key cache ids, a
 * checksum object, retries) measured ~2 ms of CPU per 1 MiB GET on top of the transfer itself
 * (docs/performance.md, "S3 front door, session 6"), a third of what the S3 front door spent per GET
 * on RGW. A GET has no body to send, so the SDK adds nothing here that this module lacks:
 *  - errors: S3's XML `<Code>`/`<Message>` become the SDK's error shape (name, Code,
 *    $metadata.httpStatusCode), so errors.ts maps them exactly as before;
 *  - retries: up to TIMEOUTS.attempts tries on a connection failure or a 5xx, as the SDK did;
 *  - time: the caller bounds the call until the answer's headers (bounded()); the socket fails when
 *    nothing moves for TIMEOUTS.idleMs, as the SDK's socketTimeout did;
 *  - region redirects: a wrong-region answer is followed once, re-signed for the region it names,
 *    which the adapter then keeps (region-redirect.ts), as the SDK did.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { TIMEOUTS, timedOut } from '../timeouts.ts';
import type { S3Presigner } from './presigner.ts';
import { movedRegion } from './region-redirect.ts';
import { BACKEND_SOCKETS } from './sdk.ts';

export const agents = {
  'http:': new HttpAgent({ keepAlive: true, maxSockets: BACKEND_SOCKETS }),
  'https:': new HttpsAgent({ keepAlive: true, maxSockets: BACKEND_SOCKETS }),
};

/** A successful GET's answer: its headers and its body (unread). */
export interface GetAnswer {
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** What S3's error answers are read into: the fields errors.ts reads from the SDK's errors. */
export class S3AnswerError extends Error {
  readonly Code: string;
  readonly $metadata: { httpStatusCode: number };
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = code !== '' ? code : status === 404 ? 'NotFound' : `HTTP${status}`;
    this.Code = code;
    this.$metadata = { httpStatusCode: status };
  }
}

/** An error answer's body is small XML; more than this is not read. */
const MAX_ERROR_BODY = 64 * 1024;

export async function answerError(res: IncomingMessage): Promise<S3AnswerError> {
  let text = '';
  for await (const chunk of res) {
    if (text.length < MAX_ERROR_BODY) text += (chunk as Buffer).toString('utf8');
  }
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? '';
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? res.statusMessage ?? '';
  return new S3AnswerError(res.statusCode ?? 0, code, message);
}

/** A request to the backend on the shared keep-alive agents, failed when no byte moves for TIMEOUTS.idleMs; `what` names it in that error. */
export function backendRequest(url: URL, method: 'GET' | 'PUT', headers: Record<string, string>, signal: AbortSignal, what: string, onResponse: (res: IncomingMessage) => void): ClientRequest {
  const protocol = url.protocol === 'https:' ? 'https:' : 'http:';
  const req = (protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, agent: agents[protocol], signal }, onResponse);
  req.setTimeout(TIMEOUTS.idleMs, () => req.destroy(timedOut(`${what} (no byte moved)`, TIMEOUTS.idleMs)));
  return req;
}

function send(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = backendRequest(url, 'GET', headers, signal, 'S3 GetObject', resolve);
    req.on('error', reject);
    req.end();
  });
}

/**
 * The backend's answer to GET `key` (200 or 206, body unread), or throws an S3AnswerError (S3 said
 * no) or a connection error; `signal` aborts it (the caller's deadline).
 */
export async function directGet(presigner: S3Presigner, key: string, range: string | undefined, signal: AbortSignal): Promise<GetAnswer> {
  const sign = async (): Promise<{ url: URL; headers: Record<string, string> }> => {
    const p = await presigner.presign({ method: 'GET', objectName: key, expiresIn: 900, metadata: {} });
    return { url: new URL(p.url), headers: { ...p.headers, ...(range !== undefined ? { range } : {}) } };
  };
  let { url, headers } = await sign();
  let moved = false;
  for (let attempt = 1; ; attempt++) {
    let res: IncomingMessage;
    try {
      res = await send(url, headers, signal);
    } catch (err) {
      if (attempt < TIMEOUTS.attempts && !signal.aborted) continue;
      throw err;
    }
    const status = res.statusCode ?? 0;
    if (status === 200 || status === 206) {
      presigner.regionConfirmed = true;
      return { headers: res.headers, body: res };
    }
    const region = moved ? undefined : movedRegion(res, url);
    if (region !== undefined) {
      // Once per request, not counted as an attempt (region-redirect.ts).
      res.resume();
      moved = true;
      presigner.regionMoved(region);
      ({ url, headers } = await sign());
      attempt--;
      continue;
    }
    const err = await answerError(res);
    if ((status >= 500 || status === 429) && attempt < TIMEOUTS.attempts && !signal.aborted) continue;
    throw err;
  }
}
