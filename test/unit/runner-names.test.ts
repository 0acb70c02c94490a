import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { duplicateNames, findRunner, profileLabels } from '../../src/config/runner-names.ts';
import type { CacheProfile } from '../../src/config/types.ts';

const profile = (name: string, i: number): CacheProfile => ({
  name, token: `glrt-${i}`, shortToken: String(i), entry: `runners[${i}]`, cache: { type: 'local', path: '', shared: false, maxUploadedArchiveSize: 0 },
});

describe('runner names', () => {
  const profiles = [profile('ci', 0), profile('docs', 1), profile('ci', 2)];

  it('findRunner: the one profile of a unique name; unknown and ambiguous names are refused, never the first or last match', () => {
    const docs = findRunner(profiles, 'docs');
    assert.ok(docs.ok);
    assert.equal(docs.profile, profiles[1]);
    const ghost = findRunner(profiles, 'ghost');
    assert.ok(!ghost.ok);
    assert.equal(ghost.reason, 'unknown');
    const ci = findRunner(profiles, 'ci');
    assert.ok(!ci.ok);
    assert.equal(ci.reason, 'ambiguous');
    assert.match(ci.message, /2 runners are named "ci" \(runners\[0\], runners\[2\]\)/);
  });

  it('duplicateNames and profileLabels tell the runners apart without their tokens', () => {
    assert.deepEqual([...duplicateNames(profiles).keys()], ['ci']);
    const labels = profileLabels(profiles);
    assert.deepEqual(profiles.map((p) => labels.get(p)), ['ci (runners[0])', 'docs', 'ci (runners[2])']);
    for (const l of labels.values()) assert.ok(!l.includes('glrt-'));
  });
});
