/**
 * "did you mean …?" for misspelt configuration fields, tables and request fields. The known names
 * always come from the zod schema that validates them (knownKeysAt), so a section another part of
 * cachegate adds to the schema is covered without a list kept here.
 */
import type { z } from 'zod';

/** Optimal string alignment distance (Levenshtein plus a swap of two neighbours: cahce → cache is 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The known name closest to `word`, when it is close enough to be a slip: the same name in another
 * case or with `_`/`-` (project_id → projectId), or at most 1 edit for short names, 2 from 5
 * characters, 3 from 10.
 */
export function closest(word: string, known: Iterable<string>): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    if (k === word) return undefined;
    const d = norm(k) === norm(word) ? 0 : editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const allowed = word.length >= 10 ? 3 : word.length >= 5 ? 2 : 1;
  return bestDistance <= allowed ? best : undefined;
}

/** ` (did you mean X?)`, or '' when nothing is close. */
export function didYouMean(word: string, known: Iterable<string>, shape: (s: string) => string = (s) => s): string {
  const s = closest(word, known);
  return s === undefined ? '' : ` (did you mean ${shape(s)}?)`;
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
}
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The object schema at `path` inside `schema` (through optional, nullable, default, pipe, array), if any. */
function objectAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  let i = 0;
  while (s !== undefined) {
    const def = defOf(s);
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'prefault') s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else if (i === path.length) return def.type === 'object' ? s : undefined;
    else if (def.type === 'array' && typeof path[i] === 'number') {
      s = def.element;
      i++;
    } else if (def.type === 'object') {
      s = def.shape?.[String(path[i])];
      i++;
    } else return undefined;
  }
  return undefined;
}

/** The field names the object schema at `path` knows (empty when there is no object there). */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const obj = objectAt(schema, path);
  return obj === undefined ? [] : Object.keys(defOf(obj).shape ?? {});
}

/**
 * One zod issue as "<message>" that names what to do: an unknown key with its closest known name,
 * a missing field as "required" (zod says "Invalid input: expected string, received undefined").
 */
export function issueMessage(issue: z.core.$ZodIssue, schema: z.ZodType, input: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(schema, issue.path);
    return issue.keys.map((k) => `unknown field ${k}${didYouMean(k, known)}`).join('; ');
  }
  if (issue.path.length > 0 && valueAt(input, issue.path) === undefined) return 'required';
  if (issue.code === 'invalid_union') return 'has the wrong type or value';
  return issue.message;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const p of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}
