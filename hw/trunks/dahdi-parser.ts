import { HwError } from '../errors';
import { zeroCounters, worstState, type SpanReport, type TrunkState } from './types';

/**
 * Parses one /proc/dahdi/<span> file, as dahdi-linux's dahdi_seq_show() writes it:
 *
 *   Span 1: TE4/0/1 "T4XXP (PCI) Card 0 Span 1" (MASTER) HDB3/CCS/CRC4 RED ClockSource
 *   <TAB>BPV count: 12            (each counter line only when non-zero)
 *   <TAB>CRC4 error count: 3
 *   <TAB>E-bit error count: 1
 *   <TAB>FAS error count: 2
 *   <TAB>IRQ misses: 0
 *   <TAB>Timing slips: 4
 *   (blank line)
 *   <TAB>   1 TE4/0/1/1 Clear (In use) RED
 *   ...
 *   <TAB>  16 TE4/0/1/16 Hardware-assisted HDLC (In use) RED
 *
 * Alarm words (fill_alarm_string): BLUE YELLOW RED LOOP RECOVERING NOTOPEN. No words: OK.
 * /proc does not show LOS/LOF/LMFA detail (only the DAHDI_SPANSTAT ioctl does), nor the Q.921
 * D-channel state (that lives in the PRI stack, e.g. Asterisk `pri show span`): the D-channel is
 * reported `down` when the line state makes it impossible and null (unknown) otherwise.
 */
export function parseDahdiSpan(text: string, expectSpan?: number): SpanReport {
  const lines = text.split('\n');
  const head = /^Span (\d+): (?:(\S+) )?"([^"]*)"(.*)$/.exec(lines[0] ?? '');
  if (!head) throw new HwError('HW_DAHDI_PARSE', `not a DAHDI span status: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const span = Number(head[1]);
  if (expectSpan !== undefined && span !== expectSpan) throw new HwError('HW_DAHDI_PARSE', `file for span ${expectSpan} describes span ${span}`);
  const words = (head[4] ?? '').trim().split(/\s+/).filter(Boolean);
  const states: TrunkState[] = [];
  let framing: string | undefined;
  let clockSource = false;
  let master = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (w === '(MASTER)') master = true;
    else if (w === 'ClockSource') clockSource = true;
    else if (w === 'BLUE' || w === 'YELLOW' || w === 'RED' || w === 'RECOVERING') states.push(w);
    else if (w === 'LOOP') states.push('LOOPBACK');
    else if (w === 'NOTOPEN') states.push('NOT_OPEN');
    else if (/^(B8ZS|AMI|HDB3|ESF|D4|CCS|CRC4)(\/(B8ZS|AMI|HDB3|ESF|D4|CCS|CRC4))*$/.test(w)) framing = w;
    else throw new HwError('HW_DAHDI_PARSE', `span ${span}: unknown status word ${JSON.stringify(w)}`);
  }
  const counters = zeroCounters();
  let total = 0;
  let inUse = 0;
  for (const raw of lines.slice(1)) {
    const line = raw.trim();
    if (!line) continue;
    const c = /^(BPV count|CRC4 error count|E-bit error count|FAS error count|IRQ misses|Timing slips): (\d+)$/.exec(line);
    if (c) {
      const n = Number(c[2]);
      if (c[1] === 'BPV count') counters.bpv = n;
      else if (c[1] === 'CRC4 error count') counters.crc4 = n;
      else if (c[1] === 'E-bit error count') counters.ebit = n;
      else if (c[1] === 'FAS error count') counters.fas = n;
      else if (c[1] === 'Timing slips') counters.slips = n;
      continue;
    }
    if (/^\d+ /.test(line)) {
      total++;
      if (line.includes('(In use)')) inUse++;
    }
  }
  const state = worstState(states.length ? states : ['OK']);
  const dchannel = state === 'OK' || state === 'RECOVERING' ? null : 'down';
  return {
    span,
    state,
    causes: [],
    dchannel,
    counters,
    framing,
    description: head[3] || head[2],
    channels: { total, inUse },
    clockSource,
    syncMaster: master,
  };
}
