/** GitLab Runner's short token (SPEC §2.3, vectors/naming.json shortToken). */
const prefixes = [/^glrt-(t[123]_)?|^t[123]_|^glrtr-/, /^glcbt-/, /^GR[0-9A-Fa-f]{7}/];

export function shortToken(token: string): string {
  let t = token;
  for (const p of prefixes) t = t.replace(p, '');
  return t.slice(0, 9);
}
