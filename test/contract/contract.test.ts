/**
 * Runs every case of cases.ts against every fixture in fixtures/ (each on its real server).
 *   CONTRACT_BACKENDS=gcs,azure   only these fixtures
 *   CONTRACT_REQUIRE_ALL=1        a fixture whose server cannot start fails instead of being skipped (CI)
 */
import { describe, test, before, after } from 'node:test';
import { readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cases, objectNameFor, type CaseContext } from './cases.ts';
import { FixtureUnavailable, type ContractBackend, type ContractFixture } from './types.ts';

const dir = new URL('./fixtures/', import.meta.url);
const wanted = process.env.CONTRACT_BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean);
const requireAll = process.env.CONTRACT_REQUIRE_ALL === '1';

const fixtures: ContractFixture[] = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts')).sort()) {
  const mod = (await import(new URL(file, dir).href)) as { default: ContractFixture };
  if (!mod.default?.name || typeof mod.default.start !== 'function') throw new Error(`fixtures/${file}: default export must be { name, start }`);
  if (!wanted || wanted.includes(mod.default.name)) fixtures.push(mod.default);
}
if (wanted) {
  const missing = wanted.filter((w) => !fixtures.some((f) => f.name === w));
  if (missing.length) throw new Error(`CONTRACT_BACKENDS names unknown fixtures: ${missing.join(', ')}`);
}

for (const fixture of fixtures) {
  describe(`contract: ${fixture.name}`, () => {
    let backend: ContractBackend | undefined;
    let unavailable: string | undefined;
    const root = `contract-${randomBytes(4).toString('hex')}`;

    before(async () => {
      try {
        backend = await fixture.start();
      } catch (err) {
        if (err instanceof FixtureUnavailable && !requireAll) unavailable = err.message;
        else throw err;
      }
    });
    after(async () => {
      await backend?.stop();
    });

    for (const kase of cases) {
      test(kase.name, async (t) => {
        if (unavailable) return t.skip(`${fixture.name} unavailable: ${unavailable}`);
        const b = backend;
        if (!b) throw new Error(`${fixture.name} did not start`);
        const reason = b.capabilities.skip?.[kase.name] ?? (kase.name.startsWith('size cap, presigned') && b.capabilities.presignedSizeCap !== true ? b.capabilities.presignedSizeCap : undefined);
        if (typeof reason === 'string') return t.skip(reason);
        const c: CaseContext = {
          backend: b,
          adapter: b.adapter,
          name: (key, opts = {}) => objectNameFor(root, opts.runner ?? 'runnerAAA', opts.project ?? '1', `${kase.name.split(':')[0].replace(/[^a-z]+/gi, '-')}/${key}`),
        };
        await kase.run(c);
      });
    }
  });
}
