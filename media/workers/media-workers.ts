import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Log } from '../../lib/log';
import { MediaError } from '../errors';
import type { PortPool } from '../rtp/port-pool';
import type { G711 } from '../webrtc/g711-codecs';
import { STATS_STRIDE, TAP_RECORD_HEADER, type FromWorker, type ToWorker, type WorkerInit } from './protocol';
import { RemoteJoint } from './remote-joint';
import { RemoteRtpSession } from './remote-rtp-session';
import { RemoteWebRtcLeg } from './remote-webrtc-leg';

/** Where a tap chunk's packets go on the main thread; `capturedAt` is on this thread's performance clock. */
export type TapSink = (channel: number, payload: Buffer, timestamp: number, ssrc: number, capturedAt: number) => void;

/** A request the worker answers with a 'reply' (the rid is added by MediaWorker.request). */
type Request =
  | { op: 'webrtc-offer'; wid: number }
  | { op: 'webrtc-answer'; wid: number; sdp: string }
  | { op: 'webrtc-close'; wid: number }
  | { op: 'tap-remove'; jid: number; tid: number };

/** How a WebRTC leg's log lines reach the call's logger. */
export interface LegLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * Worker `index` of `count` gets its own slice of the ICE port range (the main thread slice 0):
 * werift test-binds a port, closes it and binds again, so two threads gathering at once could
 * race for one port and the loser's unhandled EADDRINUSE would end its thread.
 */
export function icePortSlice(range: { min: number; max: number }, slices: number, index: number): { min: number; max: number } {
  const size = Math.floor((range.max - range.min + 1) / slices);
  if (size < 2) return range;
  const min = range.min + index * size;
  return { min, max: index === slices - 1 ? range.max : min + size - 1 };
}

export interface MediaWorkersOptions {
  /** Worker threads (≥ 1). */
  count: number;
  /** Sessions one worker may hold at once. */
  maxSessions?: number;
  log: Pick<Log, 'info' | 'warn' | 'error'>;
}

type MediaWorkersEvents = {
  /** A worker died (its sessions got `lost`) and, unless closing, was started again. */
  lost: [index: number, sessions: number, reason: string];
  /** After a death: the worker runs again (true), or was not or could not be started again (false). */
  respawned: [index: number, ok: boolean];
};

const BIND_ATTEMPTS = 5;
/** A worker that dies this often within RESTART_WINDOW_MS is not restarted again. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

/**
 * One media worker thread as the main thread sees it: its sessions and joints, the frames it
 * already holds, and its shared stats table. Load is counted in open sessions.
 */
export class MediaWorker {
  readonly statsTable: Float64Array;
  private readonly sessions = new Map<number, RemoteRtpSession>();
  private readonly legs = new Map<number, { leg: RemoteWebRtcLeg; log: LegLog | undefined }>();
  private readonly taps = new Map<number, TapSink>();
  private readonly failedTaps = new Set<number>();
  private readonly requests = new Map<number, { resolve: (sdp: string | undefined) => void; reject: (err: Error) => void }>();
  private nextRequest = 1;
  private nextTap = 1;
  private nextLeg = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private readonly freeSlots: number[] = [];
  private readonly frameKeys = new WeakMap<readonly Buffer[], number>();
  /** Frames the main thread let go of (prompts reloaded) are dropped on the worker too. */
  private readonly framesGone = new FinalizationRegistry<number>((key) => this.post({ op: 'frames-drop', key }));
  private nextFrameKey = 1;
  private nextJoint = 1;
  private dead = false;

  constructor(
    readonly index: number,
    private readonly thread: Worker,
    private readonly owner: MediaWorkers,
    readonly maxSessions: number,
    stats: SharedArrayBuffer,
  ) {
    this.statsTable = new Float64Array(stats);
    for (let i = maxSessions - 1; i >= 0; i--) this.freeSlots.push(i);
    thread.on('message', (m: FromWorker) => this.onMessage(m));
  }

  get load(): number {
    return this.sessions.size + this.pending.size + this.legs.size;
  }

  /**
   * An agent's or supervisor's WebRTC leg on this worker (the call's joint is here). Synchronous
   * like WebRtcLeg.create: if werift cannot create it, createOffer rejects with why.
   */
  webrtcLeg(opts: { codec: G711; interfaces: string[]; portRange?: { min: number; max: number }; log?: LegLog }): RemoteWebRtcLeg {
    if (opts.codec !== 'PCMU' && opts.codec !== 'PCMA') throw new MediaError('WEBRTC_FAILED', `WebRTC leg codec must be PCMU or PCMA, got "${String(opts.codec)}"`);
    if (this.dead) throw new MediaError('MEDIA_WORKER_LOST', `media worker ${this.index} is not running`);
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new MediaError('WEBRTC_FAILED', `media worker ${this.index} holds ${this.maxSessions} sessions`);
    const wid = this.nextLeg++;
    const leg = new RemoteWebRtcLeg(this, wid, slot, () => {
      this.legs.delete(wid);
      this.freeSlots.push(slot);
    });
    this.legs.set(wid, { leg, log: opts.log });
    const portRange = opts.portRange && icePortSlice(opts.portRange, this.owner.count + 1, this.index + 1);
    this.post({ op: 'webrtc-open', wid, slot, codec: opts.codec, interfaces: opts.interfaces, ...(portRange ? { portRange } : {}) });
    return leg;
  }

  /** Sends `m` with a request id; resolves with the worker's reply (an offer's SDP, or nothing). */
  request(m: Request): Promise<string | undefined> {
    if (this.dead) return Promise.reject(new MediaError('MEDIA_WORKER_LOST', `media worker ${this.index} is not running`));
    const rid = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.requests.set(rid, { resolve, reject });
      this.post({ ...m, rid });
    });
  }

  /** @internal A joint tap or session capture of this worker: the packets of chunks for `tid` go to `tap`. */
  addTap(tap: TapSink): number {
    const tid = this.nextTap++;
    this.taps.set(tid, tap);
    return tid;
  }

  /** @internal */
  removeTap(tid: number): void {
    this.taps.delete(tid);
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Binds `port` (from the main thread's pool) on this worker. */
  async openSession(opts: { pool: PortPool; host: string; latch: string[] | null }): Promise<RemoteRtpSession> {
    let last: Error | undefined;
    for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
      if (this.dead) throw new MediaError('MEDIA_WORKER_LOST', `media worker ${this.index} is not running`);
      const slot = this.freeSlots.pop();
      if (slot === undefined) throw new MediaError('RTP_PORTS_EXHAUSTED', `media worker ${this.index} holds ${this.maxSessions} sessions`);
      const port = opts.pool.acquire();
      const sid = this.owner.nextSessionId();
      try {
        await new Promise<void>((resolve, reject) => {
          this.pending.set(sid, { resolve, reject });
          this.post({ op: 'open', sid, slot, host: opts.host, port, latch: opts.latch });
        });
      } catch (err) {
        this.freeSlots.push(slot);
        opts.pool.release(port);
        last = err as Error;
        if ((err as { inUse?: boolean }).inUse === true) continue;
        throw err;
      }
      const session = new RemoteRtpSession(this, sid, slot, port, (p) => {
        opts.pool.release(p);
        this.freeSlots.push(slot);
      });
      this.sessions.set(sid, session);
      return session;
    }
    throw last ?? new MediaError('RTP_BIND_FAILED', 'cannot bind an RTP socket');
  }

  /** A joint on this worker (its participants must be sessions of this worker). */
  joint(opts: { maxParties: number }): RemoteJoint {
    const jid = this.nextJoint++;
    this.post({ op: 'joint-open', jid, maxParties: opts.maxParties });
    return new RemoteJoint(this, jid, opts.maxParties);
  }

  /** The key the worker keeps `frames` under, sending them the first time. */
  framesKey(frames: readonly Buffer[]): number {
    let key = this.frameKeys.get(frames);
    if (key === undefined) {
      key = this.nextFrameKey++;
      this.frameKeys.set(frames, key);
      this.framesGone.register(frames, key);
      this.post({ op: 'frames', key, frames: frames.map((f) => new Uint8Array(f)) });
    }
    return key;
  }

  post(m: ToWorker): void {
    if (!this.dead) this.thread.postMessage(m);
  }

  /** @internal */
  forget(session: RemoteRtpSession): void {
    this.sessions.delete(session.sid);
  }

  /** @internal The thread is gone: every session is lost, every open fails. */
  die(reason: string): number {
    if (this.dead) return 0;
    this.dead = true;
    for (const p of this.pending.values()) p.reject(new MediaError('MEDIA_WORKER_LOST', `media worker ${this.index} died: ${reason}`));
    this.pending.clear();
    for (const r of this.requests.values()) r.reject(new MediaError('MEDIA_WORKER_LOST', `media worker ${this.index} died: ${reason}`));
    this.requests.clear();
    this.taps.clear();
    const lost = [...this.sessions.values()];
    this.sessions.clear();
    const legs = [...this.legs.values()];
    for (const s of lost) s.lose();
    for (const l of legs) l.leg.lose();
    return lost.length + legs.length;
  }

  /** Hands a tap chunk's packets to the main-thread tap, each with the time the worker captured it. */
  private replayTap(tid: number, data: Uint8Array): void {
    const tap = this.taps.get(tid);
    if (!tap) return;
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const origin = performance.timeOrigin;
    let o = 0;
    try {
      while (o + TAP_RECORD_HEADER <= b.length) {
        const ch = b[o];
        const ts = b.readUInt32BE(o + 1);
        const ssrc = b.readUInt32BE(o + 5);
        const at = b.readDoubleBE(o + 9) - origin;
        const len = b.readUInt16BE(o + 17);
        o += TAP_RECORD_HEADER;
        if (o + len > b.length) break;
        tap(ch, b.subarray(o, o + len), ts, ssrc, at);
        o += len;
      }
    } catch (err) {
      // Once per tap, not ten times a second for as long as the call lasts.
      if (this.failedTaps.has(tid)) return;
      if (this.failedTaps.size > 1000) this.failedTaps.clear();
      this.failedTaps.add(tid);
      this.owner.log.warn({ err, worker: this.index, tap: tid }, 'a tap failed on a chunk from the media worker (logged once per tap)');
    }
  }

  /** Ends the thread (restart from the API, tests, daemon stop). */
  terminate(): Promise<number> {
    return this.thread.terminate();
  }

  private onMessage(m: FromWorker): void {
    switch (m.ev) {
      case 'ready':
        return;
      case 'opened':
        this.pending.get(m.sid)?.resolve();
        this.pending.delete(m.sid);
        return;
      case 'open-failed': {
        const err = Object.assign(new MediaError('RTP_BIND_FAILED', m.message), { inUse: m.inUse });
        this.pending.get(m.sid)?.reject(err);
        this.pending.delete(m.sid);
        return;
      }
      case 'problem':
        this.owner.log.warn({ code: 'MEDIA_WORKER_PROTOCOL', worker: this.index, op: m.op, reason: m.message }, 'media worker could not apply a control message');
        return;
      case 'reply': {
        const r = this.requests.get(m.rid);
        if (!r) return;
        this.requests.delete(m.rid);
        if (m.ok) r.resolve(m.sdp);
        else r.reject(new MediaError(m.code as MediaError['code'], m.message));
        return;
      }
      case 'webrtc-state':
        this.legs.get(m.wid)?.leg.noteState(m.state);
        return;
      case 'webrtc-log': {
        const log = this.legs.get(m.wid)?.log;
        if (log) log[m.level]({ ...m.fields, worker: this.index }, m.msg);
        return;
      }
      case 'tap-chunk':
        this.replayTap(m.tid, m.data);
        return;
      default: {
        const s = this.sessions.get(m.sid);
        if (!s) return;
        if (m.ev === 'dtmf') s.emit('dtmf', m.event);
        else if (m.ev === 'prompt-end') s.notePromptEnd(m.pid);
        else if (m.ev === 'error') s.emit('error', new Error(m.message));
        else {
          if (m.ev === 'latched') s.noteLatched(m.address, m.port);
          s.emit(m.ev, m.address, m.port);
        }
      }
    }
  }
}

/**
 * The media worker threads (`media.workers`). New calls go to the least loaded; a worker that dies
 * loses only its own sessions (their owners end those calls) and is started again in its place.
 */
export class MediaWorkers extends EventEmitter<MediaWorkersEvents> {
  static readonly SCRIPT = path.join(__dirname, 'media-worker.js');
  readonly log: MediaWorkersOptions['log'];
  private readonly workers: (MediaWorker | undefined)[];
  private readonly restarts: number[][];
  private readonly restartCount: number[];
  private readonly maxSessions: number;
  private sessionSeq = 0;
  private closing = false;

  private constructor(opts: MediaWorkersOptions) {
    super();
    this.log = opts.log;
    this.maxSessions = opts.maxSessions ?? 8192;
    this.workers = new Array<MediaWorker | undefined>(opts.count).fill(undefined);
    this.restarts = Array.from({ length: opts.count }, () => []);
    this.restartCount = new Array<number>(opts.count).fill(0);
  }

  /** The compiled worker script is there (a single-file bundle without it runs media in-thread). */
  static available(): boolean {
    return existsSync(MediaWorkers.SCRIPT);
  }

  static async start(opts: MediaWorkersOptions): Promise<MediaWorkers> {
    if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`media workers: count must be an integer ≥ 1, got ${opts.count}`);
    const pool = new MediaWorkers(opts);
    try {
      await Promise.all(pool.workers.map((_, i) => pool.spawn(i)));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get count(): number {
    return this.workers.length;
  }

  /** Per worker: whether it runs, its open RTP sessions, how often it died and was started again. */
  get status(): { index: number; alive: boolean; sessions: number; restarts: number }[] {
    return this.workers.map((w, index) => ({ index, alive: w?.alive ?? false, sessions: w?.load ?? 0, restarts: this.restartCount[index] }));
  }

  /** The least loaded running worker (a new call's media goes there and stays). */
  place(): MediaWorker {
    let best: MediaWorker | undefined;
    for (const w of this.workers) if (w?.alive && (!best || w.load < best.load)) best = w;
    if (!best) throw new MediaError('MEDIA_WORKER_LOST', 'no media worker is running');
    return best;
  }

  /** @internal */
  nextSessionId(): number {
    this.sessionSeq = (this.sessionSeq + 1) % Number.MAX_SAFE_INTEGER;
    return this.sessionSeq;
  }

  /**
   * Ends worker `index` as a crash would (the operator's restart, tests): its calls end with BYE,
   * it starts again. Resolves with the sessions it held once the new thread runs.
   */
  async kill(index: number): Promise<number> {
    const w = this.workers[index];
    if (!Number.isInteger(index) || !w) throw new MediaError('MEDIA_WORKER_LOST', `no media worker ${index} (there are ${this.workers.length})`);
    if (!w.alive) throw new MediaError('MEDIA_WORKER_LOST', `media worker ${index} is not running (it kept dying)`);
    const sessions = w.load;
    const respawned = new Promise<void>((resolve) => {
      const on = (i: number): void => {
        if (i !== index) return;
        this.off('respawned', on);
        resolve();
      };
      this.on('respawned', on);
    });
    await w.terminate();
    await respawned;
    return sessions;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w?.terminate()));
  }

  private spawn(index: number): Promise<void> {
    const stats = new SharedArrayBuffer(this.maxSessions * STATS_STRIDE * Float64Array.BYTES_PER_ELEMENT);
    const init: WorkerInit = { stats };
    const thread = new Worker(MediaWorkers.SCRIPT, { workerData: init, name: `ccedge-media-${index}` });
    const worker = new MediaWorker(index, thread, this, this.maxSessions, stats);
    this.workers[index] = worker;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      thread.once('message', () => {
        ready = true;
        resolve();
      });
      thread.on('error', (err) => this.log.error({ err, code: 'MEDIA_WORKER_LOST', worker: index }, 'media worker failed'));
      thread.once('exit', (code) => {
        const lost = worker.die(`exit ${code}`);
        if (!ready) {
          reject(new MediaError('MEDIA_WORKER_LOST', `media worker ${index} exited (${code}) while starting`));
          return;
        }
        if (this.closing) {
          this.emit('respawned', index, false);
          return;
        }
        this.log.error({ code: 'MEDIA_WORKER_LOST', worker: index, exitCode: code, sessions: lost }, 'media worker died: its calls end');
        this.emit('lost', index, lost, `exit ${code}`);
        this.restart(index);
      });
    });
  }

  private restart(index: number): void {
    const now = Date.now();
    const recent = this.restarts[index].filter((t) => now - t < RESTART_WINDOW_MS);
    recent.push(now);
    this.restarts[index] = recent;
    if (recent.length > MAX_RESTARTS) {
      this.log.error({ code: 'MEDIA_WORKER_LOST', worker: index, restarts: recent.length }, 'media worker keeps dying: not restarted (its share of calls goes to the others)');
      this.emit('respawned', index, false);
      return;
    }
    this.restartCount[index]++;
    this.spawn(index).then(
      () => {
        this.log.info({ worker: index }, 'media worker restarted');
        this.emit('respawned', index, true);
      },
      (err: unknown) => {
        this.log.error({ err, code: 'MEDIA_WORKER_LOST', worker: index }, 'media worker could not be restarted');
        this.emit('respawned', index, false);
      },
    );
  }
}
