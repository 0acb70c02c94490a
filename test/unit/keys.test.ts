import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goQuote } from '../../src/keys/go-quote.ts';
import { decodeHeaderValue, encodeHeaderValue } from '../../src/keys/header-value.ts';
import { hashKey, objectName, OUTSIDE_PROJECT } from '../../src/keys/object-name.ts';
import { checkFallbackKey, resolveKey } from '../../src/keys/resolve.ts';
import { sanitizeKey } from '../../src/keys/sanitize.ts';
import { shortToken } from '../../src/keys/short-token.ts';
import { CacheGateError } from '../../src/errors.ts';
import { namingVectors, sanitizeVectors } from '../support/vectors.ts';

describe('sanitize (vectors/sanitize.json)', () => {
  for (const c of sanitizeVectors) {
    it(`${JSON.stringify(c.input)} → ${c.error ? 'refused' : JSON.stringify(c.expected)}`, () => {
      const r = sanitizeKey(c.input);
      if (c.error) {
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.message, `cache key ${goQuote(c.input)} could not be sanitized`);
      } else {
        assert.deepEqual(r, { ok: true, key: c.expected, changed: c.expected !== c.input });
      }
    });
  }
  it('has all 66 upstream cases', () => assert.equal(sanitizeVectors.length, 66));
});

describe('goQuote matches Go %q', () => {
  const cases: Array<[string, string]> = [
    ['', '""'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    [' \t\r\n', '" \\t\\r\\n"'],
    ['\x00\x1b\x7f', '"\\x00\\x1b\\x7f"'],
    ['héllo ✓', '"héllo ✓"'],
    ['\u200b', '"\\u200b"'],
  ];
  for (const [input, want] of cases) it(JSON.stringify(input), () => assert.equal(goQuote(input), want));
});

describe('object names (vectors/naming.json objectName)', () => {
  for (const c of namingVectors.objectName.cases) {
    it(`${c.key} path=${c.path} shared=${c.shared} sharded=${c.sharded}`, () => {
      const r = objectName({ path: c.path, shared: c.shared, shortToken: c.shortToken, projectId: c.project }, c.key, c.sharded);
      if (c.error) assert.deepEqual(r, { ok: false, message: c.error });
      else assert.deepEqual(r, { ok: true, objectName: c.object });
    });
  }
  it('refuses a name equal to the project prefix itself', () => {
    assert.deepEqual(objectName({ path: '', shared: true, shortToken: '', projectId: '10' }, '.', false), { ok: false, message: OUTSIDE_PROJECT });
  });
});

describe('short tokens (vectors/naming.json shortToken)', () => {
  for (const [token, want] of namingVectors.shortToken.cases) it(`${token} → ${want}`, () => assert.equal(shortToken(token), want));
});

describe('hashing (vectors/naming.json hashing)', () => {
  for (const c of namingVectors.hashing.cases) {
    it(c.key, () => {
      assert.equal(hashKey(c.key), c.sha256);
      const r = resolveKey(c.key, { path: '', shared: false, shortToken: 'longtoken', projectId: '10' }, true);
      assert.equal(r.objectName, `runner/longtoken/project/10/${c.sha256.slice(0, 2)}/${c.sha256}`);
      assert.equal(r.human, c.key);
      assert.equal(r.metadata.cachekey, c.key);
    });
  }
  it('does not sanitize in hash mode', () => {
    const r = resolveKey('../x', { path: '', shared: true, shortToken: '', projectId: '1' }, true);
    assert.equal(r.human, '../x');
    assert.equal(r.stored, hashKey('../x'));
  });
});

describe('resolveKey', () => {
  const ns = { path: 'cache', shared: false, shortToken: 'abc', projectId: '7' };
  it('refuses the empty key as upstream does', () => {
    assert.throws(() => resolveKey('', ns, false), (e: unknown) => e instanceof CacheGateError && e.status === 400 && e.message === 'empty cache key');
  });
  it('refuses keys that sanitize to nothing with invalid_key', () => {
    assert.throws(() => resolveKey('..', ns, false), (e: unknown) => e instanceof CacheGateError && e.code === 'invalid_key');
  });
  it('refuses object names over 1024 bytes', () => {
    assert.throws(() => resolveKey('k'.repeat(1100), ns, false), /too long/);
  });
  it('reports a changed key', () => {
    const r = resolveKey('a\\b/', ns, false);
    assert.equal(r.human, 'a/b');
    assert.equal(r.changed, true);
    assert.equal(r.objectName, 'cache/runner/abc/project/7/a/b');
  });
  it('answers a repeated key from its cache, frozen, and keeps each namespace apart', () => {
    const a = resolveKey('repeat/me', ns, false);
    assert.equal(resolveKey('repeat/me', ns, false), a);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.metadata));
    assert.equal(resolveKey('repeat/me', { ...ns, projectId: '8' }, false).objectName, 'cache/runner/abc/project/8/repeat/me');
    assert.equal(resolveKey('repeat/me', { ...ns, shared: true }, false).objectName, 'cache/project/7/repeat/me');
    assert.notEqual(resolveKey('repeat/me', ns, true).stored, 'repeat/me');
    for (let i = 0; i < 2; i++) assert.throws(() => resolveKey('..', ns, false), /could not be sanitized|invalid/);
  });
});

describe('CACHE_FALLBACK_KEY -protected refusal', () => {
  it('refuses keys ending in -protected after trailing dots and spaces', () => {
    for (const k of ['main-protected', 'main-protected.', 'main-protected . .', 'x-protected  ']) {
      assert.equal(checkFallbackKey(k), `CACHE_FALLBACK_KEY ${goQuote(k)} not allowed to end in "-protected"`);
    }
  });
  it('accepts others', () => {
    for (const k of ['main', 'main-protected-x', 'protected', 'main-non_protected']) assert.equal(checkFallbackKey(k), undefined);
  });
});

describe('header-safe metadata', () => {
  it('passes printable ASCII unchanged', () => assert.equal(encodeHeaderValue('some-job/some-ref'), 'some-job/some-ref'));
  for (const v of ['a\r\nx-amz-meta-evil: 1', 'héllo', ' lead', 'trail\t', '\t foo bar', '=?UTF-8?B?Zm9v?=']) {
    it(`encodes ${JSON.stringify(v)} and decodes back`, () => {
      const e = encodeHeaderValue(v);
      assert.match(e, /^=\?UTF-8\?B\?[A-Za-z0-9+/=]*\?=$/);
      assert.equal(decodeHeaderValue(e), v);
    });
  }
});

describe('keys that are not valid Unicode', () => {
  it('are refused with invalid_key (found by the service fuzz test)', () => {
    assert.throws(() => resolveKey('a\ud800b', { path: '', shared: true, shortToken: '', projectId: '1' }, false), (e: unknown) => e instanceof CacheGateError && e.code === 'invalid_key' && /not valid Unicode/.test(e.message));
  });
});
