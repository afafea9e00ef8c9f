/**
 * A media worker thread: the RTP sessions, hold tones, digit senders and joints of the calls
 * placed on it, driven by control messages (protocol.ts) from the main thread. It runs the same
 * classes the main thread does (RtpSession, MediaJoint, TonePlayer, DtmfSender) on its own event
 * loop and media clock, so a call's packets never leave this thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileAllowList } from '../../lib/allow-list';
import { DtmfSender } from '../dtmf/dtmf-sender';
import { MediaError } from '../errors';
import { MediaJoint } from '../joint/media-joint';
import { RtpSessionPort } from '../joint/rtp-session-port';
import type { AudioPort } from '../joint/audio-port';
import { RtpSession, type RtpSessionStats } from '../rtp/rtp-session';
import { MediaClock } from '../tones/media-clock';
import { TonePlayer } from '../tones/tone-player';
import { STATS_FIELDS, STATS_REFRESH_MS, STATS_STRIDE, type FromWorker, type ToWorker, type WorkerInit } from './protocol';

/** One session of a call on this worker, with what plays into it and its count of joint frames. */
class Session {
  player: TonePlayer | null = null;
  dtmf: DtmfSender;
  jointSent = 0;

  constructor(
    readonly rtp: RtpSession,
    readonly slot: number,
  ) {
    this.dtmf = new DtmfSender(clock, rtp);
  }
}

/** The session's RtpSessionPort counting what the joint hands it (one increment per frame). */
class CountingPort implements AudioPort {
  private readonly inner: RtpSessionPort;
  constructor(private readonly session: Session, payloadType: number) {
    this.inner = new RtpSessionPort(session.rtp, payloadType, session.dtmf);
  }
  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void {
    this.session.jointSent++;
    this.inner.sendAudio(payload, marker, timestamp);
  }
  sendTelephoneEvent(payload: Buffer, marker: boolean, timestamp: number): void {
    this.inner.sendTelephoneEvent(payload, marker, timestamp);
  }
  on(event: 'audio' | 'telephoneEvent', listener: (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void): this {
    this.inner.on(event, listener);
    return this;
  }
  off(event: 'audio' | 'telephoneEvent', listener: (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void): this {
    this.inner.off(event, listener);
    return this;
  }
}

const init = workerData as WorkerInit;
const port = parentPort;
if (!port) throw new Error('media-worker.js runs only as a worker thread');
const stats = new Float64Array(init.stats);
const clock = new MediaClock({ onError: (err) => problem('clock', err) });
const sessions = new Map<number, Session>();
const joints = new Map<number, MediaJoint>();
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

setInterval(() => {
  for (const s of sessions.values()) writeStats(s);
}, STATS_REFRESH_MS).unref();

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
      s.dtmf.stop();
      writeStats(s);
      s.rtp.close();
      return;
    }
    case 'frames':
      frameSets.set(m.key, m.frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
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
      joint(m.jid).add({ id: m.id, port: new CountingPort(session(m.sid), m.payloadType), codec: m.codec, role: m.role, kind: m.kind });
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
      joints.get(m.jid)?.close();
      joints.delete(m.jid);
      return;
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
