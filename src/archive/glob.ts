/**
 * doublestar-compatible glob matching (what GitLab Runner uses for --path and --exclude):
 * `*` and `?` stay within one path segment, `**` as a whole segment matches zero or more
 * segments, `[abc]`/`[!a-z]` classes, `{a,b}` alternatives, `\` escapes. Dot files are not special.
 */
const META = /[*?[{\\]/;

export function hasMeta(s: string): boolean {
  return META.test(s);
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\]/.test(c) ? `\\${c}` : c;
}

function translate(p: string): string {
  let re = '';
  let i = 0;
  let braces = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === '*') {
      const segStart = i === 0 || p[i - 1] === '/';
      if (p[i + 1] === '*' && segStart && (i + 2 === p.length || p[i + 2] === '/')) {
        if (i + 2 === p.length) {
          // trailing "**": everything below, and (when preceded by "/") the directory itself
          if (re.endsWith('/')) re = `${re.slice(0, -1)}(?:/.*)?`;
          else re += '.*';
          i += 2;
        } else {
          re += '(?:[^/]*/)*';
          i += 3;
        }
        continue;
      }
      re += '[^/]*';
      i++;
      while (p[i] === '*') i++;
      continue;
    }
    if (c === '?') {
      re += '[^/]';
      i++;
      continue;
    }
    if (c === '\\' && i + 1 < p.length) {
      re += escapeRe(p[i + 1]);
      i += 2;
      continue;
    }
    if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        i++;
        continue;
      }
      let body = p.slice(i + 1, end);
      let neg = false;
      if (body[0] === '!' || body[0] === '^') {
        neg = true;
        body = body.slice(1);
      }
      body = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      re += neg ? `[^/${body}]` : `[${body}]`;
      i = end + 1;
      continue;
    }
    if (c === '{') {
      braces++;
      re += '(?:';
      i++;
      continue;
    }
    if (c === '}' && braces > 0) {
      braces--;
      re += ')';
      i++;
      continue;
    }
    if (c === ',' && braces > 0) {
      re += '|';
      i++;
      continue;
    }
    re += escapeRe(c);
    i++;
  }
  while (braces-- > 0) re += ')';
  return re;
}

export function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${translate(pattern)}$`, 'u');
}

/** Splits a pattern into its literal leading directory and the rest (doublestar.SplitPattern). */
export function splitPattern(pattern: string): { base: string; rest: string } {
  const parts = pattern.split('/');
  let k = 0;
  while (k < parts.length && !hasMeta(parts[k])) k++;
  if (k === parts.length) return { base: pattern, rest: '' };
  const base = parts.slice(0, k).join('/');
  return { base: base === '' && pattern.startsWith('/') ? '/' : base || '.', rest: parts.slice(k).join('/') };
}
