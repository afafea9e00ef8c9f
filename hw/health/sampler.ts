import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { HwError, errorMessage } from '../errors';
import type { HwLog } from '../log';
import { collectSystemSample, type SampleRequest, type SystemSample } from './system-sample';

export type SamplerMode = 'proc' | 'si-worker' | 'si-inline';

export interface Sampler {
  readonly mode: SamplerMode;
  sample(req: SampleRequest): Promise<SystemSample>;
  close(): Promise<void>;
}

/** systeminformation on the main thread (blocks the event loop for the length of its execSyncs). */
export class InlineSampler implements Sampler {
  readonly mode = 'si-inline' as const;
  sample(req: SampleRequest): Promise<SystemSample> {
    return collectSystemSample(req);
  }
  async close(): Promise<void> {}
}

/** systeminformation in a worker thread, started on first use and again after it dies. */
export class WorkerSampler implements Sampler {
  readonly mode = 'si-worker' as const;
  static readonly SCRIPT = path.join(__dirname, 'sample-worker.js');
  private worker: Worker | undefined;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (s: SystemSample) => void; reject: (e: Error) => void }>();

  constructor(private readonly log: HwLog) {}

  /** The compiled worker script exists (a single-file bundle may lack it: then use InlineSampler). */
  static available(): boolean {
    return existsSync(WorkerSampler.SCRIPT);
  }

  sample(req: SampleRequest): Promise<SystemSample> {
    const w = this.ensure();
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, req });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new HwError('HW_CLOSED', 'health sampler closed'));
    if (w) await w.terminate();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WorkerSampler.SCRIPT);
    w.unref();
    w.on('message', (m: { id: number; sample?: SystemSample; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.sample) p.resolve(m.sample);
      else p.reject(new HwError('HW_HEALTH_SAMPLE_FAILED', m.error ?? 'sample failed'));
    });
    w.on('error', (err) => {
      this.log.error({ err: errorMessage(err) }, 'health sampler worker failed');
      if (this.worker === w) this.worker = undefined;
      this.failAll(new HwError('HW_HEALTH_SAMPLE_FAILED', `health worker: ${errorMessage(err)}`));
    });
    w.on('exit', (code) => {
      if (this.worker === w) {
        this.worker = undefined;
        this.failAll(new HwError('HW_HEALTH_SAMPLE_FAILED', `health worker exited (${code})`));
      }
    });
    this.worker = w;
    return w;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
