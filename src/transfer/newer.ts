/**
 * `--alternate-url` / `--alternate-gocloud-url` on download: which of the two objects to fetch, as
 * GitLab Runner's cache-extractor chooses (merge request !6574; `selectPresignedURL` and
 * `selectGoCloudSource` in commands/helpers/cache_extractor.go). Both objects are asked for their
 * Last-Modified (a HEAD on `--head-url`, else on the URL itself; an S3 HEAD signed with the env
 * file's credentials for a gocloud URL). An object is *available* when that HEAD answers 200 with a
 * Last-Modified that parses; anything else (404, 403, 5xx, a network error, no date) is not, and is
 * not retried: upstream makes one request each and never reports the error.
 * - only the alternate is available → the alternate;
 * - both are, and the alternate is strictly newer → the alternate;
 * - otherwise (equal times, only the primary, neither) → the primary.
 */
import { deadline, discard, header, send } from './http.ts';
import { presignedRemote } from './remote.ts';
import { resolveCommon } from './resolve.ts';

export interface DownloadSource {
  url?: string;
  headUrl?: string;
  goCloudUrl?: string;
}

export interface NewerChoice {
  pick: 'primary' | 'alternate';
  /** GitLab Runner's log line for the choice. */
  reason: string;
  primary: Date | undefined;
  alternate: Date | undefined;
}

interface HeadOptions {
  /** The env file's variables (role credentials for a gocloud URL). */
  env?: Record<string, string>;
  /** `--timeout`: each HEAD ends by then at the latest. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The object's Last-Modified, or undefined when it is not available (see above). */
export async function lastModified(src: DownloadSource, opts: HeadOptions = {}): Promise<Date | undefined> {
  try {
    const remote = src.goCloudUrl
      ? resolveCommon({ file: '', goCloudUrl: src.goCloudUrl, env: opts.env }).remote
      : presignedRemote(src.headUrl ?? src.url ?? '');
    const req = remote.request('HEAD');
    const res = await send({ method: 'HEAD', url: req.url, headers: req.headers, signal: deadline(opts.timeoutMs, opts.signal) });
    discard(res);
    const raw = header(res, 'last-modified');
    if (res.statusCode !== 200 || raw === undefined) return undefined;
    const date = new Date(raw);
    return Number.isNaN(date.getTime()) ? undefined : date;
  } catch {
    return undefined;
  }
}

/** Picks the newer of the primary and the alternate object (GitLab Runner's rule and tie-break). */
export async function pickNewer(primary: DownloadSource, alternate: DownloadSource, opts: HeadOptions = {}): Promise<NewerChoice> {
  const form = primary.goCloudUrl ? 'GoCloud cache' : 'cache URL';
  const [p, a] = await Promise.all([lastModified(primary, opts), lastModified(alternate, opts)]);
  if (p === undefined && a !== undefined) return { pick: 'alternate', reason: `Selecting alternate ${form}: primary not available`, primary: p, alternate: a };
  if (p !== undefined && a !== undefined && a.getTime() > p.getTime()) return { pick: 'alternate', reason: `Selecting alternate ${form}: newer timestamp`, primary: p, alternate: a };
  return { pick: 'primary', reason: `Selecting primary ${form}`, primary: p, alternate: a };
}
