/** GitLab Runner's short token (SPEC §2.3, vectors/naming.json shortToken). */
const prefixes = [/^glrt-(t[123]_)?|^t[123]_|^glrtr-/, /^glcbt-/, /^GR[0-9A-Fa-f]{7}/];

export function shortToken(token: string): string {
  let t = token;
  for (const p of prefixes) t = t.replace(p, '');
  return t.slice(0, 9);
}

/**
 * Whether a short token names a namespace of its own: one path segment. An empty one, "." or ".."
 * (or one with a "/") collapses runner/<short token>/ into runner/ or above, where every other
 * runner's objects are (object names are joined and cleaned like Go's path.Join).
 */
export function isOwnSegment(short: string): boolean {
  return short !== '' && short !== '.' && short !== '..' && !/[/\0]/.test(short);
}
