/**
 * Removes signed-request material from text that may have come from a server: a backend's error
 * message can echo the request it got (a proxy's debug page, a hostile backend: session 9 found a
 * 503 whose message held the presigned query of the service's own backend request, which then
 * reached the client's answer and the log). Query signatures and credentials (S3, GCS, Azure SAS,
 * the local backend's), `Authorization` values and bearer tokens are replaced by a marker naming
 * what was there; the rest of the message stays readable.
 */
const SIGNED_PARAM = /\b(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|X-Goog-Signature|X-Goog-Credential|X-Cachegate-Signature|GoogleAccessId|Signature|Credential|sig)=[A-Za-z0-9%/+_.=:-]{8,}/gi;
const BEARER = /\bBearer\s+[^\s"'<>,;]{8,}/gi;
const SHARED_KEY = /\bSharedKey(Lite)?\s+[^\s"'<>,;]+/g;

export function withoutSignatures(text: string): string {
  if (!/=|Bearer|SharedKey/i.test(text)) return text;
  return text.replace(SIGNED_PARAM, (_m, name: string) => `[${name} removed]`).replace(BEARER, '[bearer token removed]').replace(SHARED_KEY, '[shared key removed]');
}

/**
 * Removes the values a client sent (its `--header` values, its credentials) from a server's
 * answer quoted in a message: a server may echo the request, and the message goes to a job log.
 * Values under 8 characters are left (they would blank common words, and are not secrets).
 */
export function withoutValues(text: string, values: Iterable<string>): string {
  let out = withoutSignatures(text);
  for (const v of values) if (v.length >= 8) out = out.split(v).join('[a sent value removed]');
  return out;
}
