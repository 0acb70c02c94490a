/** `cachegate check`: validate a configuration, print errors and warnings, exit 1 on errors; with --probe, try each backend. */
import { formatFindings, summary } from '../config/check.ts';
import { hasErrors, loadConfig } from '../config/load.ts';
import { silentLogger } from '../log.ts';
import { configOptions, loadOptions, parse } from './args.ts';

const USAGE = `cachegate check [--config FILE] [--probe]
  --config FILE   the config.toml (else CACHEGATE_CONFIG, else the CACHE_* environment)
  --probe         also talk to every backend: ready, PUT/HEAD/GET of <Path>/.cachegate/probe, a presigned
                  GET over HTTP, AssumeRole with RoleARN; each step reported; exit 1 when one fails
`;

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...configOptions, probe: { type: 'boolean' } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = loadConfig(loadOptions(values));
  for (const line of formatFindings(config)) process.stdout.write(line + '\n');
  process.stdout.write(summary(config) + '\n');
  if (hasErrors(config)) return 1;
  if (!values.probe) return 0;
  const { formatProbe, probeConfig } = await import('../service/probe.ts');
  const reports = await probeConfig(config, silentLogger());
  for (const line of formatProbe(reports)) process.stdout.write(line + '\n');
  return reports.every((r) => r.steps.every((s) => s.ok)) ? 0 : 1;
}
