/**
 * The shape the project promises (README, docs/architecture.md): the core in src/ never imports a
 * cloud SDK, and each backend in adapters/<name>/ imports only its own cloud's SDK. A test that reads
 * the import lines, so that a convenient `import … from '@aws-sdk/…'` in the core fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '../..');
const CLOUD = /^(@aws-sdk|@smithy|@aws-crypto|@azure|@google-cloud|google-auth-library|gcp-metadata)\//;
/**
 * The one exception, with its reason: the S3 front door checks the CRC32C/CRC64NVME checksums AWS
 * clients send with the same pure checksum module the AWS SDK computes them with (no client, no
 * network; docs/s3-api.md).
 */
const ALLOWED_IN_CORE = new Map([['src/s3api/checksums.ts', new Set(['@aws-sdk/checksums/crc'])]]);
const OWN_SDK: Record<string, RegExp> = {
  s3: /^@aws-sdk\//,
  azure: /^@azure\//,
  gcs: /^@google-cloud\//,
  local: /^$/,
  tier: /^$/, // the disk tier wraps the others through the CacheAdapter interface only
};

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Packages named by static, dynamic and side-effect imports (relative and node: ones left out). */
function importsIn(source: string): string[] {
  const found = [...source.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"]([^'".][^'"]*)['"]/g)].map((m) => m[1]);
  return found.filter((s) => !s.startsWith('node:'));
}

const packagesImported = (file: string): string[] => importsIn(readFileSync(file, 'utf8'));

describe('architecture: who may import a cloud SDK', () => {
  it('src/ imports no cloud SDK (one listed exception)', () => {
    const offenders: string[] = [];
    for (const file of tsFiles(join(ROOT, 'src'))) {
      const rel = relative(ROOT, file);
      for (const pkg of packagesImported(file)) {
        if (CLOUD.test(pkg) && !ALLOWED_IN_CORE.get(rel)?.has(pkg)) offenders.push(`${rel}: ${pkg}`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('adapters/<name>/ import only their own cloud SDK', () => {
    const offenders: string[] = [];
    for (const name of readdirSync(join(ROOT, 'adapters'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)) {
      const own = OWN_SDK[name];
      assert.ok(own, `adapters/${name}: add it to OWN_SDK`);
      for (const file of tsFiles(join(ROOT, 'adapters', name))) {
        for (const pkg of packagesImported(file)) {
          if (CLOUD.test(pkg) && !own.test(pkg)) offenders.push(`${relative(ROOT, file)}: ${pkg}`);
        }
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('the import scanner sees static, dynamic and side-effect imports (so the checks above can fail)', () => {
    const sample = "import a from '@aws-sdk/client-s3';\nconst b = await import('@azure/identity');\nimport '@google-cloud/storage';\nimport { x } from './local.ts';\nimport fs from 'node:fs';";
    assert.deepEqual(importsIn(sample), ['@aws-sdk/client-s3', '@azure/identity', '@google-cloud/storage']);
  });
});
