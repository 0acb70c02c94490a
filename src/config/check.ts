/** `cachegate check`: the findings of a configuration, as lines a person reads. */
import type { Config, Finding } from './types.ts';

export function formatFindings(config: Config): string[] {
  const lines: string[] = [];
  const order = (f: Finding): number => (f.level === 'error' ? 0 : 1);
  for (const f of [...config.findings].sort((a, b) => order(a) - order(b))) {
    lines.push(`${f.level === 'error' ? 'ERROR' : 'WARNING'}: ${f.field}: ${f.message}`);
  }
  return lines;
}

export function summary(config: Config): string {
  const errors = config.findings.filter((f) => f.level === 'error').length;
  const warnings = config.findings.length - errors;
  const profiles = config.profiles.map((p) => `${p.name} (${p.cache.type})`).join(', ') || 'none';
  return `${config.source}: ${errors} error(s), ${warnings} warning(s); profiles: ${profiles}`;
}
