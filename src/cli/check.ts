/** `cachegate check`: validate a configuration, print errors and warnings, exit 1 on errors. */
import { formatFindings, summary } from '../config/check.ts';
import { hasErrors, loadConfig } from '../config/load.ts';
import { configOptions, loadOptions, parse } from './args.ts';

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, configOptions);
  if (values.help) {
    process.stdout.write('cachegate check [--config FILE]\n');
    return 0;
  }
  const config = loadConfig(loadOptions(values));
  for (const line of formatFindings(config)) process.stdout.write(line + '\n');
  process.stdout.write(summary(config) + '\n');
  return hasErrors(config) ? 1 : 0;
}
