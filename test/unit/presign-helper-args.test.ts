/**
 * helperArgs of a presign answer: the download form carries the profile's MaxUploadedArchiveSize so
 * that cache-extractor's limit on what the archive may expand to (10 x it, src/archive/limits.ts)
 * holds for archives fetched through the presign flow too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { helperArgs, type PresignAnswer } from '../../src/service/presign.ts';
import { extractLimits } from '../../src/archive/index.ts';
import { parseExtractorArgs } from '../../src/archive/helper-args.ts';

function answer(maxUploadedArchiveSize: number): PresignAnswer {
  return {
    objectName: 'runner/t/project/1/k', key: { raw: 'k', human: 'k', stored: 'k', changed: false },
    url: 'https://storage.example/b/o?sig', method: 'GET', headers: {}, expiresAt: '2026-12-04T00:00:00Z',
    metadata: { cachekey: 'k' }, maxUploadedArchiveSize,
  };
}

describe('presign helperArgs', () => {
  it('download: --max-uploaded-archive-size of the profile, so the extraction limit is 10 x it', () => {
    const args = helperArgs('download', answer(50_000_000));
    assert.deepEqual(args, ['cache-extractor', '--file', 'cache.zip', '--url', 'https://storage.example/b/o?sig', '--max-uploaded-archive-size', '50000000']);
    const values = parseExtractorArgs(args!.slice(1));
    assert.equal(extractLimits({}, Number(values['max-uploaded-archive-size'])).bytes, 500_000_000);
  });

  it('download without a limit: no flag (the extractor keeps its fixed default)', () => {
    assert.deepEqual(helperArgs('download', answer(0)), ['cache-extractor', '--file', 'cache.zip', '--url', 'https://storage.example/b/o?sig']);
  });
});
