import { HwError } from '../errors';
import { ALARM_CAUSES, TRUNK_STATES, zeroCounters, type AlarmCause, type DChannel, type SpanReport, type TrunkState } from './types';

/**
 * The ccedge E1 serial status protocol (hw/trunks/README.md has the full description).
 * Line-oriented ASCII, LF or CR LF, at most 256 bytes, optional `*HH` checksum (XOR of every byte
 * before the `*`, two hex digits, as NMEA 0183).
 */
export const MAX_LINE = 256;

export type DeviceLine =
  | { kind: 'span'; report: SpanReport }
  | { kind: 'hello'; fields: Record<string, string> }
  | { kind: 'pong' }
  | { kind: 'err'; text: string }
  | { kind: 'comment' };

const COUNTER_KEYS: Record<string, keyof SpanReport['counters']> = { BPV: 'bpv', CRC4: 'crc4', EBIT: 'ebit', FAS: 'fas', SLIP: 'slips' };

export function checksum(body: string): string {
  let x = 0;
  for (let i = 0; i < body.length; i++) x ^= body.charCodeAt(i);
  return x.toString(16).toUpperCase().padStart(2, '0');
}

function garbage(line: string, why: string): HwError {
  return new HwError('HW_SERIAL_GARBAGE', `${why}: ${JSON.stringify(line.slice(0, 60))}`);
}

/** Parses one line from the device; throws HW_SERIAL_GARBAGE for anything not in the protocol. */
export function parseDeviceLine(raw: string): DeviceLine {
  if (raw.length > MAX_LINE) throw garbage(raw, 'line too long');
  // eslint-disable-next-line no-control-regex
  if (/[^\x20-\x7e\t]/.test(raw)) throw garbage(raw, 'non-ASCII bytes');
  let line = raw.trim();
  const star = line.lastIndexOf('*');
  if (star >= 0 && /^\*[0-9A-Fa-f]{2}$/.test(line.slice(star))) {
    if (checksum(line.slice(0, star)).toLowerCase() !== line.slice(star + 1).toLowerCase()) throw garbage(raw, 'bad checksum');
    line = line.slice(0, star).trimEnd();
  }
  if (line.startsWith('#')) return { kind: 'comment' };
  const [word, ...rest] = line.split(/\s+/);
  switch (word) {
    case 'PONG':
      if (rest.length) throw garbage(raw, 'PONG takes no arguments');
      return { kind: 'pong' };
    case 'ERR':
      return { kind: 'err', text: rest.join(' ') };
    case 'HELLO':
      return { kind: 'hello', fields: keyValues(rest, raw) };
    case 'SPAN':
      return { kind: 'span', report: parseSpan(rest, raw) };
    default:
      throw garbage(raw, 'unknown line');
  }
}

function keyValues(words: string[], raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw garbage(raw, `expected KEY=VALUE, got ${w}`);
    out[w.slice(0, eq).toUpperCase()] = w.slice(eq + 1);
  }
  return out;
}

function parseSpan(words: string[], raw: string): SpanReport {
  const spanWord = words.shift() ?? '';
  if (!/^\d{1,3}$/.test(spanWord) || Number(spanWord) < 1) throw garbage(raw, 'bad span number');
  const kv = keyValues(words, raw);
  const state = kv.STATE as TrunkState | undefined;
  if (!state || !(TRUNK_STATES as readonly string[]).includes(state)) throw garbage(raw, 'missing or unknown STATE');
  const causes: AlarmCause[] = [];
  if (kv.ALARMS && kv.ALARMS !== '-') {
    for (const c of kv.ALARMS.split(',')) {
      if (!(ALARM_CAUSES as readonly string[]).includes(c)) throw garbage(raw, `unknown alarm ${c}`);
      causes.push(c as AlarmCause);
    }
  }
  let dchannel: DChannel = null;
  if (kv.DCHAN !== undefined) {
    if (kv.DCHAN === 'UP') dchannel = 'up';
    else if (kv.DCHAN === 'DOWN') dchannel = 'down';
    else if (kv.DCHAN !== 'NA') throw garbage(raw, 'DCHAN must be UP, DOWN or NA');
  }
  const counters = zeroCounters();
  for (const [k, field] of Object.entries(COUNTER_KEYS)) {
    const v = kv[k];
    if (v === undefined) continue;
    if (!/^\d{1,12}$/.test(v)) throw garbage(raw, `bad counter ${k}`);
    counters[field] = Number(v);
  }
  return { span: Number(spanWord), state, causes, dchannel, counters, framing: kv.FRAMING };
}

/** Formats a SPAN line (the simulator and tests use it; a device firmware would do the same). */
export function formatSpanLine(r: SpanReport, opts: { checksum?: boolean } = {}): string {
  const parts = [
    `SPAN ${r.span}`,
    `STATE=${r.state}`,
    `ALARMS=${r.causes.length ? r.causes.join(',') : '-'}`,
    `DCHAN=${r.dchannel === 'up' ? 'UP' : r.dchannel === 'down' ? 'DOWN' : 'NA'}`,
    `BPV=${r.counters.bpv}`,
    `CRC4=${r.counters.crc4}`,
    `EBIT=${r.counters.ebit}`,
    `FAS=${r.counters.fas}`,
    `SLIP=${r.counters.slips}`,
  ];
  if (r.framing) parts.push(`FRAMING=${r.framing}`);
  const body = parts.join(' ');
  return opts.checksum ? `${body}*${checksum(body)}` : body;
}
