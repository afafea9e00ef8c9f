import assert from 'node:assert/strict';
import { MediaJoint } from '../../joint/media-joint';
import type { AudioPort } from '../../joint/audio-port';
import type { TickSource } from '../../mixer/mixer';
import { StereoBuffer } from '../../speech/audiohook/stereo-buffer';
import { encodeFrame, type G711Codec } from '../../tones/g711';
import { leastAllocatedBy } from '../helpers/heap-allocation';

type Listener = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void;

/** A port that calls its listener directly (EventEmitter.emit's rest arguments would allocate). */
class DirectPort implements AudioPort {
  listener: Listener | null = null;
  sentFrames = 0;
  private ts = 0;
  constructor(
    readonly codec: G711Codec,
    private readonly frame: Buffer,
  ) {}
  sendAudio(): void {
    this.sentFrames++;
  }
  on(event: 'audio' | 'telephoneEvent', l: Listener): this {
    if (event === 'audio') this.listener = l;
    return this;
  }
  off(event: 'audio' | 'telephoneEvent'): this {
    if (event === 'audio') this.listener = null;
    return this;
  }
  talk(): void {
    this.listener?.(this.frame, false, this.ts, 0x1234);
    this.ts = (this.ts + 160) >>> 0;
  }
}

class HandClock implements TickSource {
  fn: (() => void) | null = null;
  subscribe(fn: () => void): () => void {
    this.fn = fn;
    return () => {
      if (this.fn === fn) this.fn = null;
    };
  }
}

function sine(hz: number): Int16Array {
  const s = new Int16Array(160);
  for (let i = 0; i < 160; i++) s[i] = Math.round(5000 * Math.sin((2 * Math.PI * hz * i) / 8000));
  return s;
}

describe('mixer and joint hot path allocation', () => {
  for (const [label, n, laws] of [
    ['6-party PCMU conference', 6, ['PCMU']],
    ['16-party mixed-law conference with a coach', 16, ['PCMU', 'PCMA']],
  ] as const) {
    it(`${label}: 20 000 ticks (packets in, mixes out) allocate nothing per participant`, () => {
      const clock = new HandClock();
      const joint = new MediaJoint({ clock, maxParties: 16 });
      const ports: DirectPort[] = [];
      const tap = { caller: 0, agent: 0, pushCaller: () => void tap.caller++, pushAgent: () => void tap.agent++ };
      joint.addTap({ pushCaller: tap.pushCaller, pushAgent: tap.pushAgent }, 'p0');
      const second = { caller: 0, pushCaller: () => void second.caller++, pushAgent: () => undefined };
      joint.addTap(second, 'p0'); // recording and fork listen at once
      for (let i = 0; i < n; i++) {
        const codec = laws[i % laws.length];
        const port = new DirectPort(codec, encodeFrame(codec, sine(300 + 100 * i)));
        ports.push(port);
        joint.add({ id: `p${i}`, port, codec, role: i === n - 1 ? 'coach' : 'party', kind: i === 1 ? 'agent' : 'external' });
      }
      joint.setMute('p2', true);
      assert.equal(joint.mode, 'mix');
      const round = (): void => {
        for (let i = 0; i < ports.length; i++) ports[i].talk();
        clock.fn?.();
      };
      const run = (k: number): void => {
        for (let t = 0; t < k; t++) round();
      };
      run(20_000); // JIT warm-up (compiling inside the measured loop would count as heap)
      const bytes = leastAllocatedBy(() => run(20_000));
      console.log(`      ${(bytes / 20_000 / n).toFixed(1)} bytes per participant-tick`);
      // A Buffer per participant and tick is ~100 bytes, an array or closure 16-40 + its contents,
      // a boxed timestamp 12-16 (it was: the joint's timelines started at random 32-bit values).
      assert.ok(bytes / 20_000 / n < 4, `heap allocation ${bytes} bytes over 20 000 ticks`);
      assert.ok(ports.every((p) => p.sentFrames >= 80_000));
      assert.ok(tap.caller > 0 && tap.agent > 0);
      assert.equal(second.caller, tap.caller);
      joint.close();
    });
  }

  it('relay mode with two taps (one the media fork\'s rings): 100 000 packets each way allocate nothing per packet', () => {
    const clock = new HandClock();
    const joint = new MediaJoint({ clock, maxParties: 2 });
    const a = new DirectPort('PCMA', encodeFrame('PCMA', sine(400)));
    const b = new DirectPort('PCMA', encodeFrame('PCMA', sine(700)));
    joint.addTap({ pushCaller: () => undefined, pushAgent: () => undefined }, 'a');
    // The media fork's tap beside it: copies into its rings (full after 2 s, then overwriting).
    const fork = new StereoBuffer('PCMA');
    joint.addTap({ pushCaller: (p) => fork.pushExternal(p), pushAgent: (p) => fork.pushInternal(p) }, 'a');
    joint.add({ id: 'a', port: a, codec: 'PCMA', role: 'party', kind: 'caller' });
    joint.add({ id: 'b', port: b, codec: 'PCMA', role: 'party', kind: 'agent' });
    assert.equal(joint.mode, 'relay');
    const run = (k: number): void => {
      for (let t = 0; t < k; t++) {
        a.talk();
        b.talk();
      }
    };
    run(100_000);
    const bytes = leastAllocatedBy(() => run(100_000));
    console.log(`      ${(bytes / 200_000).toFixed(1)} bytes per relayed packet`);
    assert.ok(bytes / 200_000 < 14, `heap allocation ${bytes} bytes`);
    assert.ok(a.sentFrames >= 100_000 && b.sentFrames >= 100_000);
    assert.ok(fork.overwritten > 0 && fork.ready() === 16_000, 'the fork tap got every packet');
    joint.close();
  });
});
