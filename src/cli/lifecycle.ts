/**
 * `cachegate lifecycle`: prints, for each cloud profile, the lifecycle rule its bucket needs (expiry
 * under the profile's prefix, abandoned multipart uploads aborted) and the command that installs it.
 */
import { lifecycleFor, type LifecycleOutput } from '../lifecycle.ts';
import { configOptions, parse } from './args.ts';
import { validConfig } from './valid-config.ts';

const DEFAULT_DAYS = 14;
const HELP = `cachegate lifecycle [--config FILE] [--runner NAME] [--days N] [--json]
  The lifecycle rule for each cloud profile (S3, GCS, Azure) and the command that applies it.
  --days: expiry after the last upload (default: [cachegate.retention] max_age in days, else ${DEFAULT_DAYS}).
`;

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...configOptions, runner: { type: 'string' }, days: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const config = validConfig(values);
  if (!config) return 1;
  const maxAge = config.service.retention?.maxAge ?? 0;
  const days = values.days !== undefined ? Number(values.days) : maxAge > 0 ? Math.max(1, Math.ceil(maxAge / 86400)) : DEFAULT_DAYS;
  if (!Number.isInteger(days) || days < 1) {
    process.stderr.write(`cachegate lifecycle: --days must be a whole number of days, at least 1 (got "${values.days}")\n`);
    return 2;
  }
  const profiles = config.profiles.filter((p) => values.runner === undefined || p.name === values.runner);
  if (values.runner !== undefined && profiles.length === 0) {
    process.stderr.write(`cachegate lifecycle: no runner named "${values.runner}" has a [runners.cache] section\n`);
    return 1;
  }
  const out = profiles.map((p) => lifecycleFor(p, days)).filter((o): o is LifecycleOutput => o !== undefined);
  if (out.length === 0) {
    process.stderr.write('cachegate lifecycle: no cloud profile (S3, GCS, Azure) to write a rule for; the local backend uses [cachegate.retention]\n');
    return 1;
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  }
  for (const o of out) {
    process.stdout.write(`# runner "${o.runner}" (${o.backend}), prefix "${o.prefix}"\n# save as ${o.file}:\n${o.document}\n# apply with:\n${o.command}\n`);
    if (o.xml) process.stdout.write(`# the same rule as the S3 API's XML (e.g. s3cmd setlifecycle FILE s3://BUCKET):\n${o.xml}\n`);
    for (const n of o.notes) process.stdout.write(`# note: ${n}\n`);
    process.stdout.write('\n');
  }
  return 0;
}
