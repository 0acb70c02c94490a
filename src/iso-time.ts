/**
 * Date → ISO 8601 string, remembering the last instant converted: under load many log lines share a
 * millisecond and many presigns share an expiry second, and `toISOString` is a third of a log line's
 * cost (measured). Each caller gets its own memory, so two streams of instants do not evict each other.
 */
export function lastIsoMemo(): (ms: number) => string {
  let lastMs = NaN;
  let lastIso = '';
  return (ms) => {
    if (ms !== lastMs) {
      lastIso = new Date(ms).toISOString();
      lastMs = ms;
    }
    return lastIso;
  };
}
