import assert from 'node:assert/strict';
import { Recorder, type RecorderEvent, type RecordingSink } from '../../recorder/recorder';
import { alawToLinear, linearToUlaw } from '../../tones/g711';
import { g711WavHeader, parseG711Wav, WAV_HEADER_SIZE } from '../../recorder/wav';

class CollectSink implements RecordingSink {
  parts: Buffer[] = [];
  write(data: Buffer, offset: number, length: number): void {
    this.parts.push(Buffer.from(data.subarray(offset, offset + length)));
  }
  get data(): Buffer {
    return Buffer.concat(this.parts);
  }
  channel(ch: 0 | 1): Buffer {
    const d = this.data;
    const out = Buffer.alloc(d.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = d[i * 2 + ch];
    return out;
  }
}

interface Ev {
  t: number;
  ch: 0 | 1;
  payload: Buffer;
  ts: number;
  ssrc: number;
}

/** Runs events on a fake clock; the flush timer fires every 200 ms of fake time. */
function run(rec: Recorder, clock: { t: number }, events: Ev[], control: Array<{ t: number; fn: () => void }>, endT: number): void {
  const all = [...events.map((e) => ({ t: e.t, order: 1, fn: () => (e.ch === 0 ? rec.pushCaller(e.payload, e.ts, e.ssrc) : rec.pushAgent(e.payload, e.ts, e.ssrc)) })), ...control.map((c) => ({ ...c, order: 0 }))];
  for (let t = 200; t <= endT; t += 200) all.push({ t, order: 2, fn: () => rec.flushDue() });
  all.sort((a, b) => a.t - b.t || a.order - b.order);
  for (const e of all) {
    clock.t = e.t;
    e.fn();
  }
  clock.t = endT;
}

function runsOf(buf: Buffer, value: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  let start = -1;
  for (let i = 0; i <= buf.length; i++) {
    const on = i < buf.length && buf[i] === value;
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      runs.push([start, i]);
      start = -1;
    }
  }
  return runs;
}

const CALLER_BYTE = 0x10;
const AGENT_BYTE = 0x20;

function callerPackets(opts: { lose?: number[]; lateBy?: Record<number, number>; swap?: [number, number] }): Ev[] {
  const evs: Ev[] = [];
  for (let n = 0; n < 150; n++) {
    if (opts.lose?.includes(n)) continue;
    let t = (n + 1) * 20 + (opts.lateBy?.[n] ?? 0);
    if (opts.swap && n === opts.swap[0]) t = (opts.swap[1] + 1) * 20 + 1;
    evs.push({ t, ch: 0, payload: Buffer.alloc(160, CALLER_BYTE), ts: (1000 + n * 160) >>> 0, ssrc: 0x1111 });
  }
  return evs;
}

/** Agent audio starts 100 ms after the caller's; no packets during the hold (1000–2000 ms). */
function agentPackets(tsAdvancesDuringHold: boolean): Ev[] {
  const evs: Ev[] = [];
  let sent = 0;
  for (let k = 0; k < 145; k++) {
    const start = 100 + k * 20;
    if (start >= 1000 && start < 2000) continue;
    const ts = tsAdvancesDuringHold ? 0xfffff000 + k * 160 : 0xfffff000 + sent * 160; // wraps past 2^32
    evs.push({ t: start + 20, ch: 1, payload: Buffer.alloc(160, AGENT_BYTE), ts: ts >>> 0, ssrc: 0x2222 });
    sent++;
  }
  return evs;
}

describe('recorder', () => {
  it('aligns both channels by RTP timestamp and wall-clock offset, filling loss and hold with silence', () => {
    const clock = { t: 0 };
    const sink = new CollectSink();
    const rec = new Recorder({ codec: 'PCMU', sink, now: () => clock.t, autoFlush: false });
    const events = [...callerPackets({ lose: [10], lateBy: { 50: 900 }, swap: [20, 21] }), ...agentPackets(true)];
    run(rec, clock, events, [], 3100);
    const stats = rec.stop();

    const left = sink.channel(0);
    const right = sink.channel(1);
    assert.equal(sink.data.length % 2, 0);
    assert.equal(left.length, right.length, 'both channels have the same number of samples');
    assert.equal(left.length, 3100 * 8);
    assert.equal(stats.frames, 3100 * 8);
    assert.equal(stats.durationMs, 3100);
    // Caller: packets 0..149 at frames n*160; packet 10 lost, packet 50 arrived 900 ms late (too late).
    assert.deepEqual(runsOf(left, CALLER_BYTE), [[0, 1600], [1760, 8000], [8160, 24000]]);
    assert.deepEqual(runsOf(left, 0xff), [[1600, 1760], [8000, 8160], [24000, 24800]]);
    // Agent: starts 100 ms (800 frames) later; silent through the hold.
    assert.deepEqual(runsOf(right, AGENT_BYTE), [[800, 8000], [16000, 24000]]);
    assert.deepEqual(runsOf(right, 0xff), [[0, 800], [8000, 16000], [24000, 24800]]);
    assert.equal(stats.resyncs[1], 0);
  });

  it('re-anchors a channel whose timestamps did not advance over a hold (after 3 packets)', () => {
    const clock = { t: 0 };
    const sink = new CollectSink();
    const rec = new Recorder({ codec: 'PCMU', sink, now: () => clock.t, autoFlush: false });
    run(rec, clock, [...callerPackets({}), ...agentPackets(false)], [], 3100);
    const stats = rec.stop();
    const right = sink.channel(1);
    assert.equal(right.length, sink.channel(0).length);
    // Agent packets k=95, 96 are dropped while the jump is confirmed; k=97 onward at wall-clock place.
    assert.deepEqual(runsOf(right, AGENT_BYTE), [[800, 8000], [800 + 97 * 160, 24000]]);
    assert.equal(stats.resyncs[1], 1);
    assert.equal(stats.dropped[1], 2);
    assert.deepEqual(runsOf(sink.channel(0), CALLER_BYTE), [[0, 24000]]);
  });

  it('pause records silence on both channels and reports the pause and resume', () => {
    const clock = { t: 0 };
    const sink = new CollectSink();
    const events: RecorderEvent[] = [];
    const rec = new Recorder({ codec: 'PCMU', sink, now: () => clock.t, autoFlush: false, onEvent: (e) => events.push(e) });
    run(rec, clock, [...callerPackets({}), ...agentPackets(true)], [
      { t: 510, fn: () => rec.pause('card number', 'alice') },
      { t: 690, fn: () => rec.resume('alice') },
    ], 3100);
    const stats = rec.stop();
    assert.deepEqual(runsOf(sink.channel(0), CALLER_BYTE), [[0, 4000], [5440, 24000]]);
    assert.deepEqual(runsOf(sink.channel(1), AGENT_BYTE), [[800, 4000], [5440, 8000], [16000, 24000]]);
    assert.deepEqual(events.map((e) => e.type), ['paused', 'resumed']);
    assert.deepEqual(events[0], { type: 'paused', reason: 'card number', actor: 'alice', atMs: 510 });
    assert.equal(stats.pausedMs, 180);
    assert.equal(stats.pausedPackets, 18);
  });

  it('packets that arrive in 100 ms batches with their capture times (a call on a media worker) are recorded as if unbatched; those captured during a pause stay out after the resume', () => {
    const record = (batched: boolean): { caller: Array<[number, number]>; agent: Array<[number, number]>; pausedPackets: number } => {
      const clock = { t: 0 };
      const sink = new CollectSink();
      const rec = new Recorder({ codec: 'PCMU', sink, now: () => clock.t, autoFlush: false });
      const evs = [...callerPackets({}), ...agentPackets(true)];
      // Batched: each packet is handed over at the end of its 100 ms chunk, with the time it was captured.
      const deliveries = evs.map((e) => ({
        t: batched ? Math.ceil(e.t / 100) * 100 + 1 : e.t,
        order: 1,
        fn: () => (e.ch === 0 ? rec.pushCaller(e.payload, e.ts, e.ssrc, batched ? e.t : undefined) : rec.pushAgent(e.payload, e.ts, e.ssrc, batched ? e.t : undefined)),
      }));
      const all = [
        ...deliveries,
        { t: 510, order: 0, fn: () => rec.pause('card number', 'alice') },
        { t: 690, order: 0, fn: () => rec.resume('alice') },
      ];
      for (let t = 200; t <= 3100; t += 200) all.push({ t, order: 2, fn: () => rec.flushDue() });
      all.sort((a, b) => a.t - b.t || a.order - b.order);
      for (const e of all) {
        clock.t = e.t;
        e.fn();
      }
      clock.t = 3200;
      const stats = rec.stop();
      return { caller: runsOf(sink.channel(0), CALLER_BYTE), agent: runsOf(sink.channel(1), AGENT_BYTE), pausedPackets: stats.pausedPackets };
    };
    const direct = record(false);
    const batched = record(true);
    assert.deepEqual(batched.caller, direct.caller, 'the caller channel is placed as if each packet had arrived when captured');
    assert.deepEqual(batched.agent, direct.agent, 'the agent channel too: both stay aligned');
    // Packets captured 620–680 ms reach the recorder at 701, after the resume at 690: still out.
    assert.deepEqual(direct.caller, [[0, 4000], [5440, 24000]]);
    assert.equal(batched.pausedPackets, direct.pausedPackets);
  });

  it('uses the A-law silence byte and writes nothing before the latency window', () => {
    const clock = { t: 0 };
    const sink = new CollectSink();
    const rec = new Recorder({ codec: 'PCMA', sink, now: () => clock.t, autoFlush: false, latencyMs: 400 });
    clock.t = 300;
    rec.flushDue();
    assert.equal(sink.data.length, 0);
    clock.t = 1000;
    rec.flushDue();
    assert.equal(sink.data.length, 600 * 8 * 2);
    rec.stop();
    assert.equal(sink.data.length, 1000 * 8 * 2);
    assert.ok(sink.data.every((b) => b === 0xd5));
  });

  it('transcodes a leg whose law differs from the recording', () => {
    const clock = { t: 0 };
    const sink = new CollectSink();
    const rec = new Recorder({ codec: 'PCMU', sink, now: () => clock.t, autoFlush: false });
    rec.setSourceCodec('agent', 'PCMA');
    clock.t = 20;
    rec.pushAgent(Buffer.alloc(160, 0xd5), 0, 1); // A-law silence
    rec.pushCaller(Buffer.alloc(160, 0x10), 0, 2);
    rec.stop();
    const want = linearToUlaw(alawToLinear(0xd5)); // A-law "silence" is +8, μ-law 0xFE
    assert.ok(sink.channel(1).subarray(0, 160).every((b) => b === want));
    assert.ok(sink.channel(0).subarray(0, 160).every((b) => b === 0x10));
  });

  it('writes a G.711 stereo WAV header (format 7 μ-law / 6 A-law, 8 kHz, 2 channels)', () => {
    const h = g711WavHeader('PCMU', 16000);
    assert.equal(h.length, WAV_HEADER_SIZE);
    const p = parseG711Wav(Buffer.concat([h, Buffer.alloc(16000, 0xff)]));
    assert.deepEqual(p, { formatTag: 7, channels: 2, sampleRate: 8000, dataOffset: WAV_HEADER_SIZE, dataBytes: 16000 });
    assert.equal(parseG711Wav(Buffer.concat([g711WavHeader('PCMA', 2), Buffer.alloc(2)])).formatTag, 6);
  });
});
