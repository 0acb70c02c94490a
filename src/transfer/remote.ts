/**
 * Where a transfer's requests go: a presigned URL (+ the headers to send with it), or an S3 object
 * reached with role credentials (each request signed in the Authorization header).
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { S3Location } from './gocloud.ts';
import { signHeaders, type SigningCredentials } from './s3-sign.ts';

export interface Remote {
  /** For messages and logs: origin and path only (signatures live in the query). */
  label: string;
  /**
   * The URL and headers of one request. `query` is appended to the URL (`comp=block`, `uploadId=…`);
   * `headers` are lower-case and override the remote's own.
   */
  request(method: string, headers?: Record<string, string>, query?: Record<string, string>): { url: URL; headers: Record<string, string> };
}

function labelOf(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function withQuery(raw: string, query: Record<string, string> | undefined): URL {
  if (!query) return new URL(raw);
  // Appended as text: re-serializing the signed query through URLSearchParams could re-encode it.
  const extra = Object.entries(query).map(([k, v]) => (v === '' ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)).join('&');
  return new URL(`${raw}${raw.includes('?') ? '&' : '?'}${extra}`);
}

/**
 * Why a header cannot be sent (a name that is not a token, a value with a control character), or
 * undefined. Checked before the first request: Node refuses such a header at each request, which the
 * retry loop took for a network failure and tried again. The value is never quoted (it may be a secret).
 */
function unsendable(name: string, value: string): string | undefined {
  try {
    validateHeaderName(name);
  } catch {
    return 'its name is not a valid header name';
  }
  // Node's own check: refuses control characters and characters above U+00FF (which fetch would
  // send as their low byte: another value than given).
  try {
    validateHeaderValue(name, value);
  } catch {
    return 'its value holds a control character (CR, LF, NUL, DEL, …) or a character above U+00FF';
  }
  return undefined;
}

/** A presigned URL; `headers` (e.g. the presign answer's, or `--header` flags) go on every request. */
export function presignedRemote(url: string, headers: Record<string, string> = {}): Remote {
  const base = new URL(url);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${labelOf(base)}`);
  const given = lowerKeys(headers);
  for (const [k, v] of Object.entries(given)) {
    const why = unsendable(k, v);
    if (why !== undefined) throw new TypeError(`the header "${k}" cannot be sent: ${why}`);
  }
  return {
    label: labelOf(base),
    request: (_method, extra = {}, query) => ({ url: withQuery(url, query), headers: { ...given, ...lowerKeys(extra) } }),
  };
}

/** An S3 object with role credentials (from the env file). */
export function s3Remote(loc: S3Location, credentials: SigningCredentials): Remote {
  return {
    label: labelOf(loc.objectUrl),
    request(method, extra = {}, query) {
      const url = new URL(loc.objectUrl);
      for (const [k, v] of Object.entries(query ?? {})) url.searchParams.append(k, v);
      return { url, headers: signHeaders({ method, url, headers: lowerKeys(extra), credentials, region: loc.region }) };
    },
  };
}

/** `--header "Name: value"` flags → headers (the last of a repeated name wins). */
export function parseHeaderFlags(flags: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const all = flags ?? [];
  for (const [n, f] of all.entries()) {
    const i = f.indexOf(':');
    // Not echoed: a header value may be a secret, and the job log is read by many.
    if (i <= 0) throw new TypeError(`--header ${n + 1} of ${all.length} has no name before a ':' (expected "Name: value"; its text is not shown, it may hold a secret)`);
    const name = f.slice(0, i).trim();
    const value = f.slice(i + 1).trim();
    const why = unsendable(name, value);
    if (why !== undefined) throw new TypeError(`--header ${n + 1} of ${all.length} cannot be sent: ${why} (its text is not shown, it may hold a secret)`);
    out[name] = value;
  }
  return out;
}
