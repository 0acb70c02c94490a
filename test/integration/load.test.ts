/**
 * bench/load's harness, short: 50 concurrent clients for 5 s against a real `cachegate serve` child
 * process on the embedded backend, mixing presigns with ~1 MB proxy PUT/GET on 16 keys (so PUTs and
 * GETs of one key overlap all the time). Zero errors, and every GET returns the bytes of a PUT that
 * may be the current one for that key (bench/load.ts explains the rule). Numbers go to the test log;
 * no timing is asserted. The 200-client, 60-second run with the memory check is `npm run bench:load`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KINDS, formatTable, runLoad } from '../../bench/load.ts';

describe('load (short run of bench/load)', () => {
  it('50 clients, 5 s: no error, every proxy GET returns bytes that were PUT for its key', async (t) => {
    const r = await runLoad({
      clients: 50,
      durationSeconds: 5,
      warmupSeconds: 1,
      keys: 16,
      settleMs: 500,
      seed: Number(process.env.CACHEGATE_LOAD_SEED ?? Date.now() % 1e9),
      onProgress: (line) => t.diagnostic(line),
    });
    for (const line of formatTable(r).split('\n')) t.diagnostic(line);
    t.diagnostic(`seed ${r.options.seed}`);
    assert.deepEqual(r.errorSamples, [], 'errors during the run');
    assert.equal(r.errors, 0);
    assert.equal(r.contentMismatches, 0);
    // Not vacuous: every kind ran, and GETs found data and compared it.
    for (const k of KINDS) assert.ok(r.kinds[k].requests > 0, `no ${k} request ran`);
    assert.ok(r.contentChecks > 0, 'no proxy GET returned a body to compare');
    assert.ok(r.memory.afterRun.rssBytes > 0);
  });
});
