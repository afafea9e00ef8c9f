/**
 * A media worker thread: the RTP sessions, hold tones, digit senders and joints of the calls
 * placed on it, driven by control messages (protocol.ts) from the main thread. It runs the same
 * classes the main thread does (RtpSession, MediaJoint, TonePlayer, DtmfSender) on its own event
 * loop and media clock, so a call's packets never leave this thread.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { compileAllowList } from '../../lib/allow-list';
import { DtmfSender } from '../dtmf/dtmf-sender';
import { MediaError } from '../errors';
import { MediaJoint } from '../joint/media-joint';
import { RtpSessionPort } from '../joint/rtp-session-port';
import type { AudioPort, RecordingTap } from '../joint/audio-port';
import { CountingPort } from '../joint/counting-port';
import type { RtpHeader } from '../rtp/packet';
import { RtpSession, type RtpSessionStats } from '../rtp/rtp-session';
import { MediaClock } from '../tones/media-clock';
import { PromptPlayer } from '../tones/prompt-player';
import { TonePlayer } from '../tones/tone-player';
import { WebRtcLeg } from '../webrtc/webrtc-leg';
import { STATS_FIELDS, STATS_REFRESH_MS, STATS_STRIDE, TAP_CHUNK_MS, TAP_RECORD_HEADER, type FromWorker, type JointSource, type ToWorker, type WorkerInit } from './protocol';

/** One session of a call on this worker, with what plays into it and its count of joint frames. */
class Session {
  player: TonePlayer | null = null;
  prompt: PromptPlayer | null = null;
  capture: { tid: number; tap: ChunkTap; listener: (h: RtpHeader, payload: Buffer) => void } | null = null;
  dtmf: DtmfSender;
  jointSent = 0;

  constructor(
    readonly rtp: RtpSession,
    readonly slot: number,
  ) {
    this.dtmf = new DtmfSender(clock, rtp);
  }
}

/** An agent's or supervisor's WebRTC leg on this worker. */
class Leg {
  jointSent = 0;
  constructor(
    readonly webrtc: WebRtcLeg,
    readonly slot: number,
  ) {}
}

/**
 * A joint tap whose packets go to the main thread in chunks (TAP_CHUNK_MS): copied into one
 * preallocated buffer with their capture time, posted as one message when the interval ends or
 * the buffer is full. Per packet: a copy, no allocation.
 */
class ChunkTap implements RecordingTap {
  private readonly buf = Buffer.alloc(32 * 1024);
  private len = 0;
  constructor(readonly tid: number) {}
  pushCaller(payload: Buffer, timestamp: number, ssrc: number): void {
    this.put(0, payload, timestamp, ssrc);
  }
  pushAgent(payload: Buffer, timestamp: number, ssrc: number): void {
    this.put(1, payload, timestamp, ssrc);
  }
  /** A received packet of a session being captured: the channel byte carries its payload type. */
  readonly onPacket = (h: RtpHeader, payload: Buffer): void => {
    this.put(h.payloadType, payload, h.timestamp, h.ssrc);
  };
  flush(): void {
    if (this.len === 0) return;
    const data = new Uint8Array(this.buf.subarray(0, this.len));
    this.len = 0;
    port?.postMessage({ ev: 'tap-chunk', tid: this.tid, data } satisfies FromWorker, [data.buffer]);
  }
  put(ch: number, payload: Buffer, timestamp: number, ssrc: number): void {
    const need = TAP_RECORD_HEADER + payload.length;
    if (need > this.buf.length) return;
    if (this.len + need > this.buf.length) this.flush();
    const b = this.buf;
    let o = this.len;
    b[o] = ch;
    b.writeUInt32BE(timestamp >>> 0, o + 1);
    b.writeUInt32BE(ssrc >>> 0, o + 5);
    // Epoch ms: the main thread's performance clock has another origin.
    b.writeDoubleBE(performance.timeOrigin + performance.now(), o + 9);
    b.writeUInt16BE(payload.length, o + 17);
    o += TAP_RECORD_HEADER;
    payload.copy(b, o);
    this.len = o + payload.length;
  }
}

const init = workerData as WorkerInit;
const port = parentPort;
if (!port) throw new Error('media-worker.js runs only as a worker thread');
const stats = new Float64Array(init.stats);
const clock = new MediaClock({ onError: (err) => problem('clock', err) });
const sessions = new Map<number, Session>();
const joints = new Map<number, MediaJoint>();
const legs = new Map<number, Leg>();
/** Joint taps (jid) and session captures (jid -1), flushed every TAP_CHUNK_MS. */
const taps = new Map<number, { jid: number; tap: ChunkTap }>();
const frameSets = new Map<number, Buffer[]>();

function post(m: FromWorker): void {
  port?.postMessage(m);
}

function problem(op: string, err: unknown): void {
  post({ ev: 'problem', op, message: err instanceof Error ? err.message : String(err) });
}

function writeStats(s: Session): void {
  const st: RtpSessionStats = s.rtp.stats;
  const base = s.slot * STATS_STRIDE;
  for (let i = 0; i < STATS_FIELDS.length - 1; i++) stats[base + i] = st[STATS_FIELDS[i] as keyof RtpSessionStats];
  stats[base + STATS_FIELDS.length - 1] = s.jointSent;
}

function writeLegStats(l: Leg): void {
  const base = l.slot * STATS_STRIDE;
  stats[base + STATS_FIELDS.indexOf('packetsSent')] = l.webrtc.stats.packetsSent;
  stats[base + STATS_FIELDS.indexOf('packetsReceived')] = l.webrtc.stats.packetsReceived;
  stats[base + STATS_FIELDS.length - 1] = l.jointSent;
}

setInterval(() => {
  for (const s of sessions.values()) writeStats(s);
  for (const l of legs.values()) writeLegStats(l);
}, STATS_REFRESH_MS).unref();
setInterval(() => {
  for (const t of taps.values()) t.tap.flush();
}, TAP_CHUNK_MS).unref();

function session(sid: number): Session {
  const s = sessions.get(sid);
  if (!s) throw new MediaError('MEDIA_WORKER_PROTOCOL', `no session ${sid} on this worker`);
  return s;
}

function joint(jid: number): MediaJoint {
  const j = joints.get(jid);
  if (!j) throw new MediaError('MEDIA_WORKER_PROTOCOL', `no joint ${jid} on this worker`);
  return j;
}

/** Legs werift could not create, with why (the offer request answers with it). */
const unopened = new Map<number, MediaError>();

function leg(wid: number): Leg {
  const l = legs.get(wid);
  if (!l) throw unopened.get(wid) ?? new MediaError('MEDIA_WORKER_PROTOCOL', `no WebRTC leg ${wid} on this worker`);
  return l;
}

function memberPort(source: JointSource): AudioPort {
  if (source.kind === 'webrtc') {
    const l = leg(source.wid);
    return new CountingPort(l.webrtc, l);
  }
  const s = session(source.sid);
  return new CountingPort(new RtpSessionPort(s.rtp, source.payloadType, s.dtmf), s);
}

function reply(rid: number, work: Promise<string | undefined>): void {
  work.then(
    (sdp) => post({ ev: 'reply', rid, ok: true, ...(sdp === undefined ? {} : { sdp }) }),
    (err: unknown) =>
      post({ ev: 'reply', rid, ok: false, code: err instanceof MediaError ? err.code : 'WEBRTC_FAILED', message: err instanceof Error ? err.message : String(err) }),
  );
}

/** Log fields that cross threads as plain values (an error becomes its message). */
function plain(obj: object): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (v instanceof Error) out[k] = v.message;
    else if (v !== undefined && v !== null) out[k] = String(v);
  }
  return out;
}

function openLeg(m: Extract<ToWorker, { op: 'webrtc-open' }>): void {
  const log = {
    info: (obj: object, msg: string) => post({ ev: 'webrtc-log', wid: m.wid, level: 'info', fields: plain(obj), msg }),
    warn: (obj: object, msg: string) => post({ ev: 'webrtc-log', wid: m.wid, level: 'warn', fields: plain(obj), msg }),
  };
  let webrtc: WebRtcLeg;
  try {
    webrtc = WebRtcLeg.create({ codec: m.codec, interfaces: m.interfaces, ...(m.portRange ? { portRange: m.portRange } : {}), log });
  } catch (err) {
    unopened.set(m.wid, err instanceof MediaError ? err : new MediaError('WEBRTC_FAILED', err instanceof Error ? err.message : String(err)));
    return;
  }
  const l = new Leg(webrtc, m.slot);
  legs.set(m.wid, l);
  webrtc.on('state', (state) => {
    if (state === 'closed') {
      writeLegStats(l);
      legs.delete(m.wid);
    }
    post({ ev: 'webrtc-state', wid: m.wid, state });
  });
  writeLegStats(l);
}

function stopCapture(s: Session): void {
  const c = s.capture;
  if (!c) return;
  s.capture = null;
  s.rtp.off('packet', c.listener);
  c.tap.flush();
  taps.delete(c.tid);
}

function frames(key: number): Buffer[] {
  const f = frameSets.get(key);
  if (!f) throw new MediaError('MEDIA_WORKER_PROTOCOL', `no frames under key ${key}`);
  return f;
}

async function open(m: Extract<ToWorker, { op: 'open' }>): Promise<void> {
  const latch = m.latch === null ? null : compileAllowList(m.latch);
  let rtp: RtpSession;
  try {
    // The main thread owns the port pool; this session binds exactly the port it was given.
    rtp = await RtpSession.open({
      pool: { acquire: () => m.port, release: () => undefined },
      host: m.host,
      latchAllowed: latch === null ? undefined : (address) => latch.check(address, 'ipv4'),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    post({ ev: 'open-failed', sid: m.sid, code: err instanceof MediaError ? err.code : 'RTP_BIND_FAILED', message, inUse: message.includes('EADDRINUSE') });
    return;
  }
  const s = new Session(rtp, m.slot);
  sessions.set(m.sid, s);
  rtp.on('dtmf', (event) => post({ ev: 'dtmf', sid: m.sid, event }));
  rtp.on('foreign', (address, p) => post({ ev: 'foreign', sid: m.sid, address, port: p }));
  rtp.on('latched', (address, p) => post({ ev: 'latched', sid: m.sid, address, port: p }));
  rtp.on('error', (err) => post({ ev: 'error', sid: m.sid, message: err.message }));
  writeStats(s);
  post({ ev: 'opened', sid: m.sid });
}

function apply(m: ToWorker): void {
  switch (m.op) {
    case 'open':
      void open(m);
      return;
    case 'configure':
      session(m.sid).rtp.configure(m);
      return;
    case 'remote':
      session(m.sid).rtp.setRemote(m.address, m.port);
      return;
    case 'srtp':
      session(m.sid).rtp.setSrtp(m.keys && { localKeySalt: Buffer.from(m.keys.local), remoteKeySalt: Buffer.from(m.keys.remote) });
      return;
    case 'pause':
      session(m.sid).rtp.pause();
      return;
    case 'resume':
      session(m.sid).rtp.resume();
      return;
    case 'close': {
      const s = sessions.get(m.sid);
      if (!s) return;
      sessions.delete(m.sid);
      s.player?.stop();
      s.prompt?.stop();
      stopCapture(s);
      s.dtmf.stop();
      writeStats(s);
      s.rtp.close();
      return;
    }
    case 'frames':
      frameSets.set(m.key, m.frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
      return;
    case 'frames-drop':
      frameSets.delete(m.key);
      return;
    case 'tone': {
      const s = session(m.sid);
      s.player?.stop();
      s.player = null;
      if (m.key === null) return;
      s.player = new TonePlayer(clock, s.rtp, frames(m.key));
      s.player.start();
      return;
    }
    case 'prompt': {
      const s = session(m.sid);
      s.prompt?.stop();
      const pid = m.pid;
      const player = new PromptPlayer(clock, s.rtp, frames(m.key), () => {
        if (s.prompt === player) s.prompt = null;
        post({ ev: 'prompt-end', sid: m.sid, pid });
      });
      s.prompt = player;
      player.start();
      return;
    }
    case 'prompt-stop': {
      const s = sessions.get(m.sid);
      s?.prompt?.stop();
      if (s) s.prompt = null;
      return;
    }
    case 'capture': {
      const s = session(m.sid);
      stopCapture(s);
      const tap = new ChunkTap(m.tid);
      s.capture = { tid: m.tid, tap, listener: tap.onPacket };
      s.rtp.on('packet', tap.onPacket);
      taps.set(m.tid, { jid: -1, tap });
      return;
    }
    case 'capture-stop': {
      const s = sessions.get(m.sid);
      if (s) stopCapture(s);
      return;
    }
    case 'digits':
      session(m.sid).dtmf.send(m.digits);
      return;
    case 'digits-stop':
      session(m.sid).dtmf.stop();
      return;
    case 'joint-open':
      joints.set(m.jid, new MediaJoint({ clock, maxParties: m.maxParties }));
      return;
    case 'joint-add':
      joint(m.jid).add({ id: m.id, port: memberPort(m.source), codec: m.codec, role: m.role, kind: m.kind });
      return;
    case 'joint-remove':
      joint(m.jid).remove(m.id);
      return;
    case 'joint-role':
      joint(m.jid).setRole(m.id, m.role);
      return;
    case 'joint-hold':
      joint(m.jid).setHold(m.id, m.key === null ? null : m.key === -1 ? [] : frames(m.key));
      return;
    case 'joint-mute':
      joint(m.jid).setMute(m.id, m.on);
      return;
    case 'joint-close':
      for (const [tid, t] of taps) {
        if (t.jid !== m.jid) continue;
        t.tap.flush();
        taps.delete(tid);
      }
      joints.get(m.jid)?.close();
      joints.delete(m.jid);
      return;
    case 'tap-add': {
      const tap = new ChunkTap(m.tid);
      joint(m.jid).addTap(tap, m.callerId);
      taps.set(m.tid, { jid: m.jid, tap });
      return;
    }
    case 'tap-remove': {
      const t = taps.get(m.tid);
      if (t) {
        taps.delete(m.tid);
        joints.get(t.jid)?.removeTap(t.tap);
        t.tap.flush();
      }
      post({ ev: 'reply', rid: m.rid, ok: true });
      return;
    }
    case 'webrtc-open':
      openLeg(m);
      return;
    case 'webrtc-offer':
      reply(m.rid, Promise.resolve(m.wid).then((wid) => leg(wid).webrtc.createOffer()));
      return;
    case 'webrtc-answer':
      reply(m.rid, Promise.resolve(m.wid).then((wid) => leg(wid).webrtc.acceptAnswer(m.sdp)).then(() => undefined));
      return;
    case 'webrtc-close': {
      const l = legs.get(m.wid);
      unopened.delete(m.wid);
      reply(m.rid, l ? l.webrtc.close().then(() => undefined) : Promise.resolve(undefined));
      return;
    }
  }
}

port.on('message', (m: ToWorker) => {
  try {
    apply(m);
  } catch (err) {
    problem(m.op, err);
  }
});
post({ ev: 'ready' });
