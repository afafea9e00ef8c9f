/**
 * RFC 4028 session timers: the negotiation a UAS does on an INVITE, re-INVITE or UPDATE, and the
 * reading of a 2xx to a refresh we sent. Pure functions; the dialog owns the timers.
 */
import type { Headers } from 'sip';

export interface SessionTimerConfig {
  /** Smallest Session-Expires we accept (our Min-SE); below it: 422 with this value. */
  minSessionExpiresS: number;
  /** Interval we ask for when we choose one (a request that supports timers but names none, our refreshes). */
  sessionExpiresS: number;
}

/** Who refreshes, named as in the headers: `uac` is the sender of the request being answered. */
export type Refresher = 'uac' | 'uas';

export interface SessionTimerRequest {
  /** Session-Expires delta-seconds (undefined: the header is absent). */
  expires?: number;
  refresher?: Refresher;
  /** Min-SE of the request (0 when absent). */
  minSe: number;
  /** `timer` in Supported or Require: the sender can refresh and understands our Require. */
  supported: boolean;
}

export type SessionTimerNegotiation =
  /** No session timer (neither side asked for one). */
  | { kind: 'none' }
  /** 422 Session Interval Too Small with `Min-SE: minSe`. */
  | { kind: 'reject'; minSe: number }
  /** The session runs with `interval`; `refresher` as put in our answer's Session-Expires. */
  | { kind: 'timer'; interval: number; refresher: Refresher; require: boolean }
  /** Session-Expires or Min-SE present but malformed: 400. */
  | { kind: 'bad'; why: string };

/** RFC 4028 §4: delta-seconds; more than 2^32-1 is nonsense and refused. */
const DELTA = /^\s*(\d{1,10})\s*$/;

function hasTag(v: unknown, tag: string): boolean {
  return typeof v === 'string' && v.length <= 1024 && v.split(',').some((t) => t.trim().toLowerCase() === tag);
}

/** Reads Session-Expires (or its compact form x), Min-SE, Supported and Require of a message. */
export function parseSessionTimer(headers: Headers): SessionTimerRequest | { bad: string } {
  const se = headers['session-expires'] ?? headers.x;
  const minSeRaw = headers['min-se'];
  const out: SessionTimerRequest = { minSe: 0, supported: hasTag(headers.supported, 'timer') || hasTag(headers.require, 'timer') };
  if (se !== undefined) {
    if (typeof se !== 'string' || se.length > 256) return { bad: 'Session-Expires is malformed' };
    const [delta, ...params] = se.split(';');
    const m = DELTA.exec(delta);
    if (!m || Number(m[1]) > 0xffffffff) return { bad: 'Session-Expires is not a number of seconds' };
    out.expires = Number(m[1]);
    for (const p of params) {
      const [k, v] = p.split('=').map((x) => x.trim().toLowerCase());
      if (k === 'refresher' && (v === 'uac' || v === 'uas')) out.refresher = v;
    }
  }
  if (minSeRaw !== undefined) {
    const m = typeof minSeRaw === 'string' || typeof minSeRaw === 'number' ? DELTA.exec(String(minSeRaw).split(';')[0]) : null;
    if (!m || Number(m[1]) > 0xffffffff) return { bad: 'Min-SE is not a number of seconds' };
    out.minSe = Number(m[1]);
  }
  return out;
}

/**
 * What a UAS answers to a session-timer request (RFC 4028 §9). A request without Session-Expires
 * from a peer that does not support timers gets none: we do not impose refreshes on a PBX that
 * never asked (its old behaviour is kept). One that supports them but names no interval gets ours
 * with itself as refresher.
 */
export function negotiateSessionTimer(headers: Headers, cfg: SessionTimerConfig): SessionTimerNegotiation {
  const rq = parseSessionTimer(headers);
  if ('bad' in rq) return { kind: 'bad', why: rq.bad };
  if (rq.expires === undefined) {
    if (!rq.supported) return { kind: 'none' };
    return { kind: 'timer', interval: Math.max(cfg.sessionExpiresS, rq.minSe, cfg.minSessionExpiresS), refresher: 'uac', require: true };
  }
  if (rq.expires < cfg.minSessionExpiresS) return { kind: 'reject', minSe: cfg.minSessionExpiresS };
  // A peer that does not support timers cannot refresh: then we must (RFC 4028 §9).
  const refresher: Refresher = !rq.supported ? 'uas' : (rq.refresher ?? 'uac');
  return { kind: 'timer', interval: Math.max(rq.expires, rq.minSe), refresher, require: rq.supported };
}

/** The Session-Expires value of an answer or a refresh: `1800;refresher=uac`. */
export function sessionExpiresValue(interval: number, refresher: Refresher): string {
  return `${interval};refresher=${refresher}`;
}

/**
 * When the side that does not refresh gives up (RFC 4028 §10): before expiry by a third of the
 * interval or 32 s, whichever is less, so a refresh in flight still counts. Milliseconds.
 */
export function expiryDelayMs(interval: number): number {
  return Math.round((interval - Math.min(32, interval / 3)) * 1000);
}

/** When the refresher refreshes (RFC 4028 §7.2 recommends half the interval). Milliseconds. */
export function refreshDelayMs(interval: number): number {
  return Math.round((interval / 2) * 1000);
}

/** Whether the peer implements UPDATE (its Allow header); else we refresh with re-INVITE. */
export function allowsUpdate(headers: Headers): boolean {
  return hasTag(headers.allow, 'update');
}
