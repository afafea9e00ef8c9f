import v8 from 'node:v8';

/**
 * Bytes `fn` allocated on the JS heap: heap growth between GCs, summed over the GCs that ran
 * meanwhile (GCProfiler reports the heap before and after each one).
 */
export function allocatedBy(fn: () => void): number {
  const profiler = new v8.GCProfiler();
  profiler.start();
  const start = v8.getHeapStatistics().used_heap_size;
  fn();
  const end = v8.getHeapStatistics().used_heap_size;
  const gcs = profiler.stop()?.statistics ?? [];
  let total = 0;
  let from = start;
  for (const g of gcs) {
    total += Math.max(0, g.beforeGC.heapStatistics.usedHeapSize - from);
    from = g.afterGC.heapStatistics.usedHeapSize;
  }
  return total + Math.max(0, end - from);
}

/**
 * The least of five runs: a (re)compilation or V8's concurrent sweeping landing inside one run
 * counts as heap too (seen once in the whole unit suite under load, never alone).
 */
export function leastAllocatedBy(fn: () => void): number {
  let least = Infinity;
  for (let i = 0; i < 5; i++) least = Math.min(least, allocatedBy(fn));
  return least;
}
