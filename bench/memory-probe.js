// Loaded into a helper command by bench/helper-memory.ts --breakdown (NODE_OPTIONS=--import):
// samples process.memoryUsage() and V8's heap spaces every 10 ms and, at exit, writes the sample
// taken at the highest RSS, a coarse timeline and the time of each line the command prints (`marks`,
// to place the timeline's phases: download, extraction), to $CACHEGATE_MEMORY_PROBE (JSON). Plain JavaScript: it must not need
// the TypeScript loader, which would itself move the numbers it measures.
import fs from 'node:fs';
import v8 from 'node:v8';

const out = process.env.CACHEGATE_MEMORY_PROBE;
if (out) {
  let peak = { rss: 0 };
  const timeline = [];
  let n = 0;
  const sample = () => {
    const m = process.memoryUsage();
    // every 250 ms: [ms, RSS MB, heap MB, ArrayBuffers MB], to place the peak in the command's phases
    if (n++ % 25 === 0) timeline.push([Math.round(performance.now()), ...[m.rss, m.heapTotal, m.arrayBuffers].map((b) => Math.round(b / 1048576))]);
    if (m.rss <= peak.rss) return;
    const spaces = {};
    for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.physical_space_size;
    const h = v8.getHeapStatistics();
    peak = { ...m, spaces, mallocedMemory: h.malloced_memory, peakMallocedMemory: h.peak_malloced_memory, externalMemory: h.external_memory, atMs: Math.round(performance.now()) };
  };
  setInterval(sample, 10).unref();
  const marks = [];
  for (const stream of [process.stdout, process.stderr]) {
    const w = stream.write.bind(stream);
    stream.write = (chunk, ...rest) => { marks.push([Math.round(performance.now()), String(chunk).slice(0, 60)]); return w(chunk, ...rest); };
  }
  process.on('exit', () => {
    sample();
    fs.writeFileSync(out, JSON.stringify({ ...peak, timeline, marks }));
  });
}
