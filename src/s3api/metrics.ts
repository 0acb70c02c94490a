/** The S3 front door's own counters, on the service's registry (docs/metrics.md). */
import { Counter, type Registry } from 'prom-client';

export class S3ApiMetrics {
  readonly operations: Counter<'operation' | 'outcome'>;
  readonly signatureFailures: Counter<'code'>;

  constructor(registry: Registry) {
    this.operations = new Counter({
      name: 'cachegate_s3api_requests_total',
      help: 'S3 front door requests by operation (GetObject, PutObject, …) and outcome (ok, or the S3 error code)',
      labelNames: ['operation', 'outcome'] as const,
      registers: [registry],
    });
    this.signatureFailures = new Counter({
      name: 'cachegate_s3api_signature_failures_total',
      help: 'S3 front door requests refused for their signature, by S3 error code',
      labelNames: ['code'] as const,
      registers: [registry],
    });
  }
}
