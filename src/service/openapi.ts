/** GET /openapi.json: the v1 API, with the presign request schema generated from the zod schema that validates it. */
import { z } from 'zod';
import { presignRequestSchema } from './presign.ts';

const error = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
};

const presignAnswer = {
  type: 'object',
  required: ['objectName', 'key', 'url', 'method', 'headers', 'expiresAt', 'metadata', 'maxUploadedArchiveSize'],
  properties: {
    objectName: { type: 'string' },
    key: { type: 'object', properties: { raw: { type: 'string' }, human: { type: 'string' }, stored: { type: 'string' }, changed: { type: 'boolean' } } },
    url: { type: 'string', format: 'uri' },
    method: { type: 'string', enum: ['GET', 'HEAD', 'PUT'] },
    headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Headers to send with the request' },
    expiresAt: { type: 'string', format: 'date-time' },
    metadata: { type: 'object', properties: { cachekey: { type: 'string' } } },
    maxUploadedArchiveSize: { type: 'integer', description: 'Bytes; 0 = unlimited' },
    goCloudUrl: { type: 'string', description: 'When a role applies (S3 RoleARN): s3://bucket/object?… for multipart transfers' },
    env: { type: 'object', additionalProperties: { type: 'string' }, description: 'Scoped credentials for goCloudUrl' },
    helperArgs: { type: 'array', items: { type: 'string' }, description: 'argv of cachegate cache-archiver / cache-extractor' },
    fallbacks: { type: 'array', items: { $ref: '#/components/schemas/PresignAnswer' } },
    warnings: { type: 'array', items: { type: 'string' } },
  },
};

const ERROR_MEANING: Record<number, string> = {
  404: 'No cache archive under this key (a miss)',
  502: 'backend_error: the storage refused for a configuration reason (missing bucket/container, wrong or denied credentials); the message names the setting to check; not worth retrying',
  503: 'backend_unavailable: the storage cannot be reached, failed (5xx) or did not answer in time; retry after Retry-After',
};
const errors = (codes: number[]): Record<string, object> =>
  Object.fromEntries(codes.map((c) => [String(c), { description: ERROR_MEANING[c] ?? 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]));

const objectPath = {
  parameters: [
    { name: 'projectId', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
    { name: 'key', in: 'path', required: true, schema: { type: 'string' }, description: 'Cache key; may contain /' },
    { name: 'hashKeys', in: 'query', required: false, schema: { type: 'boolean' } },
  ],
};

export function openApiDocument(version: string): object {
  return {
    openapi: '3.1.0',
    info: { title: 'cachegate', version, description: 'Presigner and proxy for CI build caches (GitLab Runner [runners.cache] compatible)' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A runner token from config.toml or an API token from [cachegate]' } },
      schemas: { Error: error, PresignRequest: z.toJSONSchema(presignRequestSchema, { io: 'input' }), PresignAnswer: presignAnswer },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/presign': {
        post: {
          summary: 'Presign a download, upload or head of one cache key',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/PresignRequest' } } } },
          responses: {
            '200': { description: 'Presigned request', content: { 'application/json': { schema: { $ref: '#/components/schemas/PresignAnswer' } } } },
            ...errors([400, 401, 403, 413, 429, 502, 503]),
          },
        },
      },
      '/v1/cache/{projectId}/{key}': {
        ...objectPath,
        get: { summary: 'Download a cache archive through the service (Range supported)', responses: { '200': { description: 'Archive' }, '206': { description: 'Part' }, ...errors([400, 401, 404, 416, 429, 502, 503]) } },
        head: { summary: 'Size, Last-Modified and metadata of a cache archive', responses: { '200': { description: 'Found' }, '404': { description: 'Not found' }, '502': { description: 'The storage refused: a configuration fault (no body on HEAD)' }, '503': { description: 'The storage cannot be reached' } } },
        put: { summary: 'Upload a cache archive through the service', responses: { '200': { description: 'Stored' }, ...errors([400, 401, 403, 413, 429, 502, 503, 507]) } },
      },
      '/v1/blob/{objectName}': {
        get: { summary: 'Local backend: presigned download (URLs from /v1/presign)', security: [], responses: { '200': { description: 'Archive' }, ...errors([403, 404]) } },
        head: { summary: 'Local backend: presigned head', security: [], responses: { '200': { description: 'Found' } } },
        put: { summary: 'Local backend: presigned upload', security: [], responses: { '200': { description: 'Stored' }, ...errors([400, 403, 413, 503, 507]) } },
      },
      '/healthz': { get: { summary: 'Process is up', security: [], responses: { '200': { description: 'OK' } } } },
      '/readyz': { get: { summary: 'Every backend is reachable', security: [], responses: { '200': { description: 'Ready' }, '503': { description: 'A backend is not reachable' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'Metrics' } } } },
      '/v1/admin/usage': {
        get: {
          summary: 'Usage by runner and project: bytes, objects, oldest and newest use, hits and misses (the admin token only: [cachegate] admin_token)',
          responses: { '200': { description: 'Usage report (docs/retention.md)' }, ...errors([401, 404]) },
        },
      },
    },
  };
}
