/**
 * Where S3 requests go: endpoint, path style, AWS hostnames (DualStack, Accelerate, S3 Express).
 * Pure functions, no SDK, no network: the rules of SPEC §1 "Derived S3 rules".
 */
import type { S3Settings } from '../../src/config/types.ts';

export interface CustomEndpoint {
  /** 'https:' | 'http:' */
  protocol: 'https:' | 'http:';
  /** Host name without port. */
  hostname: string;
  /** undefined when it is the scheme's default port (dropped). */
  port: number | undefined;
  /** scheme://host[:port] */
  url: string;
}

/** The custom endpoint of a ServerAddress, or undefined for AWS's own endpoint (no address, or s3.amazonaws.com). */
export function customEndpoint(s3: Pick<S3Settings, 'serverAddress' | 'insecure'>): CustomEndpoint | undefined {
  const address = s3.serverAddress.trim();
  if (address === '' || address.toLowerCase() === 's3.amazonaws.com') return undefined;
  const protocol = s3.insecure ? 'http:' : 'https:';
  const defaultPort = s3.insecure ? 80 : 443;
  // ServerAddress is host[:port]; IPv6 literals come bracketed ([::1]:9000).
  const m = /^(\[[^\]]+\]|[^:/]+)(?::(\d+))?$/.exec(address);
  if (m === null) throw new Error(`S3 ServerAddress "${address}" is not host[:port] (no scheme, no path)`);
  const hostname = m[1].toLowerCase();
  let port = m[2] === undefined ? undefined : Number(m[2]);
  if (port === defaultPort) port = undefined;
  const url = `${protocol}//${hostname}${port === undefined ? '' : `:${port}`}`;
  return { protocol, hostname, port, url };
}

export function isAmazonHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 's3.amazonaws.com' || h.endsWith('.amazonaws.com') || h.endsWith('.amazonaws.com.cn');
}
export function isGoogleHost(hostname: string): boolean {
  return hostname.toLowerCase() === 'storage.googleapis.com';
}
export function isAliyunHost(hostname: string): boolean {
  return hostname.toLowerCase().endsWith('.aliyuncs.com');
}

/**
 * Path style when PathStyle is unset (minio-go's IsVirtualHostSupported, which GitLab Runner follows):
 * virtual-hosted style only for AWS, Google and Aliyun hosts, and never for https with a dotted bucket
 * name (the wildcard TLS certificate would not match). Everything else (MinIO, Ceph, localhost): path style.
 */
export function autoPathStyle(hostname: string, https: boolean, bucket: string): boolean {
  if (https && bucket.includes('.')) return true;
  return !(isAmazonHost(hostname) || isGoogleHost(hostname) || isAliyunHost(hostname));
}

/** S3 Express One Zone directory bucket: `<base>--<az-id>--x-s3`. Returns the zone id, or undefined. */
export function s3ExpressZone(bucket: string): string | undefined {
  const m = /^[a-z0-9][a-z0-9.-]*--([a-z0-9-]+)--x-s3$/.exec(bucket);
  return m === null ? undefined : m[1];
}

export function partitionOf(region: string): 'aws' | 'aws-us-gov' | 'aws-cn' {
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('cn-')) return 'aws-cn';
  return 'aws';
}

/** Everything needed to build a request URL for one object, once the region is known. */
export interface Target {
  protocol: 'https:' | 'http:';
  /** Host name the request goes to (bucket included for virtual-hosted style). */
  hostname: string;
  port: number | undefined;
  /** The `host` header value (hostname[:port]). */
  host: string;
  /** Path prefix before the URI-encoded object name: '/' or '/<bucket>/'. */
  pathPrefix: string;
  /** SigV4 signing name: 's3', or 's3express' for directory buckets. */
  signingName: 's3' | 's3express';
  region: string;
  pathStyle: boolean;
  /** DualStack/Accelerate actually applied (AWS endpoint only). */
  dualStack: boolean;
  accelerate: boolean;
  /** Custom endpoint URL, or undefined for AWS. */
  endpoint: string | undefined;
}

export interface TargetWarnings {
  warn(message: string): void;
}

/** Effective path style: the setting when given, else the auto rule (S3 Express is always virtual-hosted). */
export function effectivePathStyle(s3: S3Settings): boolean {
  const custom = customEndpoint(s3);
  if (custom === undefined && s3ExpressZone(s3.bucketName) !== undefined) return false;
  if (s3.pathStyle !== undefined) return s3.pathStyle;
  if (custom === undefined) return autoPathStyle('s3.amazonaws.com', true, s3.bucketName);
  return autoPathStyle(custom.hostname, custom.protocol === 'https:', s3.bucketName);
}

export function resolveTarget(s3: S3Settings, region: string, warnings?: TargetWarnings): Target {
  const bucket = s3.bucketName;
  const custom = customEndpoint(s3);
  const pathStyle = effectivePathStyle(s3);
  if (custom !== undefined) {
    const hostname = pathStyle ? custom.hostname : `${bucket}.${custom.hostname}`;
    const host = custom.port === undefined ? hostname : `${hostname}:${custom.port}`;
    return {
      protocol: custom.protocol, hostname, port: custom.port, host,
      pathPrefix: pathStyle ? `/${encodeKeySegment(bucket)}/` : '/',
      signingName: 's3', region, pathStyle, dualStack: false, accelerate: false, endpoint: custom.url,
    };
  }
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  const zone = s3ExpressZone(bucket);
  if (zone !== undefined) {
    if (s3.dualStack) warnings?.warn(`S3 Express One Zone bucket "${bucket}": DualStack is not available, using the IPv4 zonal endpoint`);
    if (s3.accelerate) warnings?.warn(`S3 Express One Zone bucket "${bucket}": Accelerate is not available, ignored`);
    const hostname = `${bucket}.s3express-${zone}.${region}.${suffix}`;
    return {
      protocol: 'https:', hostname, port: undefined, host: hostname, pathPrefix: '/',
      signingName: 's3express', region, pathStyle: false, dualStack: false, accelerate: false, endpoint: undefined,
    };
  }
  let accelerate = s3.accelerate;
  if (accelerate && (pathStyle || bucket.includes('.'))) {
    warnings?.warn(`S3 Accelerate needs a virtual-hosted bucket without dots; "${bucket}" uses path style, Accelerate ignored`);
    accelerate = false;
  }
  const dualStack = s3.dualStack;
  let base: string;
  if (accelerate) base = `s3-accelerate${dualStack ? '.dualstack' : ''}.${suffix}`;
  else base = `s3${dualStack ? '.dualstack' : ''}.${region}.${suffix}`;
  const hostname = pathStyle ? base : `${bucket}.${base}`;
  return {
    protocol: 'https:', hostname, port: undefined, host: hostname,
    pathPrefix: pathStyle ? `/${encodeKeySegment(bucket)}/` : '/',
    signingName: 's3', region, pathStyle, dualStack, accelerate, endpoint: undefined,
  };
}

/** S3's URI encoding of one path segment: every byte but A-Z a-z 0-9 - . _ ~ is %XX (upper case). */
export function encodeKeySegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** URI-encode an object name for the request path, keeping '/' separators. */
export function encodeObjectPath(objectName: string): string {
  return objectName.split('/').map(encodeKeySegment).join('/');
}
