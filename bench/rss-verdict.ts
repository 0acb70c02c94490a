/**
 * The "RSS flat" verdict of the S3 front door's long mix (bench/s3api.ts; docs/performance.md,
 * "session 9"): from the door's RSS sampled every 5 s, skip the first 2 minutes (the V8 heap sizes
 * its young generation and the allocator reaches the high-water mark of the bytes in flight), then
 *   slope: least-squares line through the rest, in MiB per minute;
 *   lastHalfRange: max − min over the last half of the run, in MiB.
 * Flat when |slope| <= 0.5 MiB/min (30 MiB an hour at most) and lastHalfRange <= 32 MiB (the swing
 * of ~200 1 MiB bodies in flight, which comes and goes with the load).
 */
export const FLAT_SLOPE_MIB_PER_MIN = 0.5;
export const FLAT_RANGE_MIB = 32;

export interface RssVerdict { flat: boolean; slopeMiBPerMin: number; lastHalfRangeMiB: number; samples: number; rule: string }

export function rssVerdict(samplesMiB: number[], everySeconds = 5, skipSeconds = 120): RssVerdict | undefined {
  const ys = samplesMiB.slice(Math.ceil(skipSeconds / everySeconds));
  if (ys.length < 6) return undefined; // a run too short to say
  const xs = ys.map((_, i) => (i * everySeconds) / 60);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const slope = sxy / sxx;
  const lastHalf = samplesMiB.slice(Math.floor(samplesMiB.length / 2));
  const range = Math.max(...lastHalf) - Math.min(...lastHalf);
  return {
    flat: Math.abs(slope) <= FLAT_SLOPE_MIB_PER_MIN && range <= FLAT_RANGE_MIB,
    slopeMiBPerMin: Math.round(slope * 100) / 100,
    lastHalfRangeMiB: range,
    samples: samplesMiB.length,
    rule: `|slope after ${skipSeconds} s| <= ${FLAT_SLOPE_MIB_PER_MIN} MiB/min and max-min over the last half <= ${FLAT_RANGE_MIB} MiB`,
  };
}
