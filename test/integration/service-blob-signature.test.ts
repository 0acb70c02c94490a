/**
 * /v1/blob URLs over HTTP (issue 14.7): only the form the service signed is accepted; junk after the
 * signature, a second signature or expiry, upper-case hex, other parameters → 403 malformed_signature.
 * Proxy URLs: a repeated or odd ?hashKeys= → 400.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { presign, startTestService, type TestService } from '../support/service.ts';

const TOKEN = 'glrt-blobsig-00001';

describe('/v1/blob signature parsing over HTTP', () => {
  let svc: TestService;
  let url: string;
  let sig: string;

  before(async () => {
    svc = await startTestService({ toml: `[[runners]]\nname = "r"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "local"\n` });
    const put = await fetch(`${svc.url}/v1/cache/5/k`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'cached bytes' });
    assert.equal(put.status, 200);
    url = (await presign(svc, { operation: 'download', key: 'k', projectId: '5' }, TOKEN)).json.url;
    sig = new URL(url).searchParams.get('X-Cachegate-Signature') as string;
  });
  after(async () => svc?.stop());

  it('the URL as signed works', async () => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'cached bytes');
  });

  for (const [what, edit] of [
    ['junk after the hex signature', (u: string) => `${u}zz`],
    ['upper-case hex', (u: string) => u.replace(sig, sig.toUpperCase())],
    ['a second signature', (u: string) => `${u}&X-Cachegate-Signature=${'0'.repeat(64)}`],
    ['a second signature, first', (u: string) => u.replace('?', `?X-Cachegate-Signature=${'0'.repeat(64)}&`)],
    ['a second expiry', (u: string) => `${u}&X-Cachegate-Expires=9999999999`],
    ['another parameter', (u: string) => `${u}&debug=1`],
  ] as const) {
    it(`${what} → 403 malformed_signature, GET and HEAD`, async () => {
      const res = await fetch(edit(url));
      assert.equal(res.status, 403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'malformed_signature', body.error.message);
      assert.equal((await fetch(edit(url), { method: 'HEAD' })).status, 403);
    });
  }

  it('proxy: ?hashKeys= repeated or not true/false/1/0 → 400', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const q of ['hashKeys=true&hashKeys=false', 'hashKeys=yes', 'hashKeys=']) {
      const res = await fetch(`${svc.url}/v1/cache/5/k?${q}`, { headers: auth });
      assert.equal(res.status, 400, q);
    }
    assert.equal((await fetch(`${svc.url}/v1/cache/5/k?hashKeys=false`, { headers: auth })).status, 200);
  });
});
