/**
 * Cloud-driven updates over MQTT (registered by app/wiring/cloud.ts):
 *
 *   cmd/update.chunk  {id, transfer, index, count, data}   a bundle in base64 pieces (≤ 45 KiB
 *                                                          each, 60 KiB in base64: commands are capped at 64 KiB);
 *                                                          sent in order, a repeated index is a no-op
 *   cmd/update.apply  {id, version, url? | transfer?, sha256?, size?}
 *                     downloads (http/https) or assembles the bundle into <dataDir>/updates/,
 *                     checks sha256/size when given, then applies it exactly like
 *                     `ccedge update apply`: signature, compatible, floor, payload hashes, inactive
 *                     slot, database copy, trial switch. Replies ok with {version, slot, from},
 *                     then restarts into the new slot (exit 75).
 *   update/progress   (up, QoS 0)  {cmdId, version, phase: download|verify|write|db-backup|restart, percent}
 *   update/status     (up, QoS 1, retained) published at every start: running version, slot,
 *                     trial or not, and the last result (committed / rolled-back with reason) —
 *                     how the cloud learns the outcome after the restart.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { ImageError } from './errors';
import { requestRestart } from './restart';
import { loadUpdateSettings, type UpdateSettings } from './settings';
import { Slots } from './slots';
import type { Log } from '../lib/log';

export interface CommandRegistry {
  register<S extends z.ZodType>(name: string, schema: S, handler: (args: z.output<S>, ctx: { id: string; name: string }) => unknown): unknown;
}

/** sync.publishLive: false when not connected (nothing is queued). */
export type Publish = (suffix: string, payload: unknown, opts: { qos: 0 | 1; retain?: boolean }) => boolean | void;

export interface UpdateCloudDeps {
  dataDir: string;
  /** The running version, reported in update/status (the composition root knows it; image/ does not import the gateway). */
  version: string;
  publish: Publish;
  log: Pick<Log, 'info' | 'warn' | 'error'>;
  settings?: UpdateSettings;
  /** Default: requestRestart() and SIGTERM to this process after `restartDelayMs`. */
  restart?: () => void;
  restartDelayMs?: number;
  /** Largest bundle accepted (bytes). */
  maxBytes?: number;
  statusIntervalMs?: number;
}

const TRANSFER = /^[A-Za-z0-9_-]{1,64}$/;
const CHUNK_MAX = 45 * 1024;

export const updateApplySchema = z
  .object({
    version: z.string().regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/),
    url: z.string().url().refine((u) => /^https?:\/\//.test(u), { message: 'http:// or https:// only' }).optional(),
    transfer: z.string().regex(TRANSFER).optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    size: z.number().int().min(1).optional(),
  })
  .strict()
  .refine((a) => (a.url === undefined) !== (a.transfer === undefined), { message: 'give exactly one of url or transfer' });

export const updateChunkSchema = z
  .object({ transfer: z.string().regex(TRANSFER), index: z.number().int().min(0), count: z.number().int().min(1).max(100_000), data: z.string().min(1).max(Math.ceil(CHUNK_MAX / 3) * 4) })
  .strict();

export interface UpdateCommands {
  /** Publishes the retained update/status now (call it from the sync `republish` hook). */
  republish(): void;
  close(): void;
}

export function registerUpdateCommands(commands: CommandRegistry, deps: UpdateCloudDeps): UpdateCommands {
  const settings = deps.settings ?? loadUpdateSettings();
  const slots = new Slots(settings, (line) => deps.log.info({ component: 'update' }, line));
  const incoming = path.join(deps.dataDir, 'updates', 'incoming');
  const maxBytes = deps.maxBytes ?? 1024 * 1024 * 1024;
  let busy = false;

  commands.register('update.chunk', updateChunkSchema, (a) => {
    mkdirSync(incoming, { recursive: true });
    const part = path.join(incoming, `${a.transfer}.part`);
    const meta = path.join(incoming, `${a.transfer}.json`);
    const state = existsSync(meta) ? (JSON.parse(readFileSync(meta, 'utf8')) as { received: number; count: number }) : { received: 0, count: a.count };
    if (a.index === 0 && state.received > 0 && a.count !== state.count) {
      rmSync(part, { force: true });
      state.received = 0;
      state.count = a.count;
    }
    if (a.count !== state.count) throw new ImageError('UPDATE_DOWNLOAD_FAILED', `transfer ${a.transfer} has ${state.count} chunks, this one says ${a.count}`);
    if (a.index < state.received) return { transfer: a.transfer, received: state.received, count: state.count, repeated: true };
    if (a.index > state.received) throw new ImageError('UPDATE_DOWNLOAD_FAILED', `chunk ${a.index} of transfer ${a.transfer} is out of order: send ${state.received} next`);
    const data = Buffer.from(a.data, 'base64');
    if (data.length > CHUNK_MAX) throw new ImageError('UPDATE_DOWNLOAD_FAILED', `chunk larger than ${CHUNK_MAX} bytes`);
    const fd = openSync(part, a.index === 0 ? 'w' : 'a');
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (statSync(part).size > maxBytes) throw new ImageError('UPDATE_DOWNLOAD_FAILED', `transfer larger than ${maxBytes} bytes`);
    state.received = a.index + 1;
    writeFileSync(meta, JSON.stringify(state));
    return { transfer: a.transfer, received: state.received, count: state.count };
  });

  commands.register('update.apply', updateApplySchema, async (a, ctx) => {
    if (busy) throw new ImageError('UPDATE_IN_PROGRESS', 'an update is already being applied');
    busy = true;
    const progress = (phase: string, percent: number): unknown => deps.publish('update/progress', { cmdId: ctx.id, version: a.version, phase, percent: Math.round(percent) }, { qos: 0 });
    try {
      mkdirSync(incoming, { recursive: true });
      const file = path.join(incoming, `${a.version}.bundle`);
      if (a.url) await download(a.url, file, maxBytes, (done, total) => progress('download', total ? (100 * done) / total : 0));
      else {
        const meta = path.join(incoming, `${a.transfer}.json`);
        const st = existsSync(meta) ? (JSON.parse(readFileSync(meta, 'utf8')) as { received: number; count: number }) : undefined;
        if (!st || st.received !== st.count) throw new ImageError('UPDATE_DOWNLOAD_FAILED', `transfer ${a.transfer} is incomplete (${st?.received ?? 0} of ${st?.count ?? '?'} chunks)`);
        renameSync(path.join(incoming, `${a.transfer}.part`), file);
        rmSync(meta, { force: true });
      }
      progress('verify', 0);
      const size = statSync(file).size;
      if (a.size !== undefined && size !== a.size) throw new ImageError('UPDATE_DOWNLOAD_FAILED', `the bundle is ${size} bytes, the command says ${a.size}`);
      if (a.sha256) {
        const h = createHash('sha256');
        for await (const c of readChunks(file)) h.update(c);
        if (h.digest('hex') !== a.sha256) throw new ImageError('UPDATE_DOWNLOAD_FAILED', 'the bundle does not have the sha256 the command gives (damaged download)');
      }
      const opened = await slots.open(file);
      if (opened.manifest.version !== a.version) throw new ImageError('UPDATE_APPLY_FAILED', `the bundle is version ${opened.manifest.version}, the command asked for ${a.version}`);
      const trial = await slots.apply(file, { dataDir: deps.dataDir, progress: (phase, done, total) => progress(phase, total ? (100 * done) / total : 0) });
      rmSync(file, { force: true });
      progress('restart', 100);
      deps.log.info({ version: trial.version, slot: trial.slot, from: trial.from.version }, 'update applied from the cloud: restarting into the new slot');
      setTimeout(
        () => {
          if (deps.restart) deps.restart();
          else {
            requestRestart();
            process.kill(process.pid, 'SIGTERM');
          }
        },
        deps.restartDelayMs ?? 1000,
      );
      return { version: trial.version, slot: trial.slot, from: trial.from.version, state: 'restarting' };
    } finally {
      busy = false;
    }
  });

  commands.register('update.status', z.object({}).strict(), () => statusPayload(slots, deps.version));

  // update/status at start, on every change (a commit by the trial watch, a rollback), until the
  // link takes it, and once a minute regardless.
  let lastSent = '';
  let ticks = 0;
  const report = (force: boolean): void => {
    try {
      const payload = statusPayload(slots, deps.version);
      const text = JSON.stringify(payload);
      if (!force && text === lastSent) return;
      // Offline: nothing was sent; the next tick tries again.
      if (deps.publish('update/status', payload, { qos: 1, retain: true }) === false) return;
      lastSent = text;
      if (slots.installed()) slots.markReported();
    } catch (err) {
      deps.log.warn({ err }, 'update status not published');
    }
  };
  report(true);
  const timer = setInterval(() => report(++ticks % 30 === 0), deps.statusIntervalMs ?? 2000);
  timer.unref();
  return { republish: () => report(true), close: () => clearInterval(timer) };
}

function statusPayload(slots: Slots, version: string): Record<string, unknown> {
  if (!slots.installed()) return { version, installed: false };
  const s = slots.state();
  return { version, installed: true, current: slots.current(), committed: slots.committed(), trial: s.trial ? { version: s.trial.version, boots: s.trial.boots } : null, last: s.last ?? null };
}

async function* readChunks(file: string): AsyncGenerator<Buffer> {
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) yield c as Buffer;
}

async function download(url: string, file: string, maxBytes: number, progress: (done: number, total: number) => void): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(30 * 60_000) });
  } catch (e) {
    throw new ImageError('UPDATE_DOWNLOAD_FAILED', `cannot download ${url}: ${(e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new ImageError('UPDATE_DOWNLOAD_FAILED', `download of ${url} failed: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length') ?? 0);
  if (total > maxBytes) throw new ImageError('UPDATE_DOWNLOAD_FAILED', `the bundle is ${total} bytes, more than ${maxBytes}`);
  const part = `${file}.part`;
  let done = 0;
  let lastPct = -1;
  const count = new Transform({
    transform(chunk: Buffer, _e, cb) {
      done += chunk.length;
      if (done > maxBytes) return cb(new ImageError('UPDATE_DOWNLOAD_FAILED', `the bundle is more than ${maxBytes} bytes`));
      const pct = total ? Math.floor((100 * done) / total) : 0;
      if (pct !== lastPct) {
        lastPct = pct;
        progress(done, total);
      }
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), count, createWriteStream(part));
  } catch (e) {
    rmSync(part, { force: true });
    if (e instanceof ImageError) throw e;
    throw new ImageError('UPDATE_DOWNLOAD_FAILED', `download of ${url} broke off: ${(e as Error).message}`);
  }
  renameSync(part, file);
}
