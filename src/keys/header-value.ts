/**
 * Metadata values travel as HTTP header values (x-amz-meta-cachekey and friends), which cannot hold
 * CR, LF, other control characters, non-ASCII or leading/trailing whitespace without being mangled
 * or allowing header injection. Such values are sent RFC 2047 encoded (=?UTF-8?B?…?=), the way S3
 * itself returns non-ASCII metadata; plain printable ASCII passes unchanged.
 */
const safe = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

export function encodeHeaderValue(value: string): string {
  if (value === '' || safe.test(value)) {
    if (!(value.startsWith('=?') && value.endsWith('?='))) return value;
  }
  return `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

const encodedWord = /^=\?UTF-8\?([BQ])\?([^?]*)\?=$/i;

export function decodeHeaderValue(value: string): string {
  const m = encodedWord.exec(value.trim());
  if (!m) return value;
  if (m[1].toUpperCase() === 'B') return Buffer.from(m[2], 'base64').toString('utf8');
  const bytes = m[2].replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_s, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A header value as Node hands it over (one character per received byte) read as the UTF-8 its
 * client sent; a value that is not valid UTF-8, or already holds characters beyond one byte, is kept.
 */
export function fromHeaderBytes(value: string): string {
  if (!/[\x80-\xff]/.test(value) || /[^\x00-\xff]/.test(value)) return value;
  try {
    return utf8.decode(Buffer.from(value, 'latin1'));
  } catch {
    return value;
  }
}

/**
 * A stored metadata value as a response header: printable ASCII (encoded words included) as it is,
 * anything else (stored by an older version or by another writer of the backend) RFC 2047 encoded,
 * so that no answer carries raw bytes or fails to be written.
 */
export function metadataHeaderValue(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeHeaderValue(fromHeaderBytes(value));
}
