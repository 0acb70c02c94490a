/**
 * The helper's transfer library (SPEC §5 "Transfers"): what cache-archiver and cache-extractor call.
 * See docs/transfer.md.
 */
export { upload, checkRemote, isAzureSasUrl, tooBigMessage, type UploadOptions, type UploadResult, type CheckRemoteOptions } from './upload.ts';
export { download, type DownloadOptions, type DownloadResult } from './download.ts';
export { parseEnvFile, formatEnvFile, readEnvFile, writeEnvFile } from './env-file.ts';
export { parseGoCloudUrl, type S3Location } from './gocloud.ts';
export { metadataFromHeaders } from './metadata.ts';
export { createMeter, meterFrequency, parseGoDuration, formatBytes, type Meter, type ProgressFn } from './meter.ts';
export { parseHeaderFlags } from './remote.ts';
export type { CommonOptions } from './resolve.ts';
