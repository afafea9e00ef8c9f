import assert from 'node:assert/strict';
import { MediaJoint, type JointParticipant } from '../../joint/media-joint';
import { MediaError } from '../../errors';
import { MediaClock } from '../../tones/media-clock';
import { renderTone } from '../../tones/tone';
import type { G711Codec } from '../../tones/g711';
import { Goertzel } from '../../tones/goertzel';
import type { ParticipantKind, ParticipantRole } from '../../mixer/mixer';
import { ticks, TonePort } from '../helpers/tone-port';

/** A frequency counts as heard above this share of the received power, as absent below NOT_HEARD. */
const HEARD = 0.12;
const NOT_HEARD = 0.03;
/** Frames skipped after a change before analysing (FIFO fill, switch). */
const SETTLE = 4;
const WINDOW = 40;
const HOLD_HZ = 425;

interface Rig {
  clock: MediaClock;
  joint: MediaJoint;
  ports: Map<string, TonePort>;
  stop: () => void;
}

function rig(maxParties = 6): Rig {
  // A 5 ms clock: the same 160-sample frames, four times faster, so the suite stays quick.
  const clock = new MediaClock({ frameMs: 5 });
  const joint = new MediaJoint({ clock, maxParties });
  const ports = new Map<string, TonePort>();
  const off = clock.subscribe(() => {
    for (const p of ports.values()) p.talk();
  });
  return {
    clock,
    joint,
    ports,
    stop: () => {
      joint.close();
      off();
    },
  };
}

function join(r: Rig, id: string, hz: number, opts: { codec?: G711Codec; role?: ParticipantRole; kind?: ParticipantKind; samples?: number } = {}): TonePort {
  const port = new TonePort(id, opts.codec ?? 'PCMU', hz, 6000, opts.samples ?? 160);
  r.ports.set(id, port);
  const p: JointParticipant = { id, port, codec: port.codec, role: opts.role ?? 'party', kind: opts.kind ?? 'external' };
  r.joint.add(p);
  return port;
}

/** Lets audio flow, then returns where each port's analysis window starts. */
async function settle(r: Rig): Promise<Map<TonePort, number>> {
  await ticks(r.clock, SETTLE);
  const marks = new Map<TonePort, number>();
  for (const p of r.ports.values()) marks.set(p, p.mark);
  await ticks(r.clock, WINDOW);
  return marks;
}

function expectHearing(port: TonePort, from: number, heard: number[], notHeard: number[]): void {
  assert.ok(port.frames.length - from >= WINDOW / 2, `${port.name} received only ${port.frames.length - from} frames`);
  for (const hz of heard) {
    const s = port.heard(hz, from);
    assert.ok(s > HEARD, `${port.name} should hear ${hz} Hz (share ${s.toFixed(3)})`);
  }
  for (const hz of notHeard) {
    const s = port.heard(hz, from);
    assert.ok(s < NOT_HEARD, `${port.name} should not hear ${hz} Hz (share ${s.toFixed(3)})`);
  }
}

describe('media joint', function () {
  this.timeout(20000);
  let r: Rig;
  beforeEach(() => {
    r = rig();
  });
  afterEach(() => r.stop());

  it('two parties on one codec are relayed untouched; agent DTMF reaches the caller', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    assert.equal(r.joint.mode, 'relay');
    const m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700], [400]);
    expectHearing(agent, m.get(agent)!, [400], [700]);
    // The very Buffer objects the other side sent: nothing decoded or re-encoded.
    assert.ok(agent.rawFrames.slice(-10).every((f) => caller.sent.has(f)));
    assert.ok(caller.rawFrames.slice(-10).every((f) => agent.sent.has(f)));
    assert.equal(r.joint.stats.mixer.ticks, 0);
    const ev = Buffer.from([1, 0x0a, 0, 160]);
    agent.emit('telephoneEvent', ev, true, 1234);
    assert.deepEqual(caller.events, [ev]);
  });

  it('three-party conference: everyone hears the other two and never themselves', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    const ext = join(r, 'ext', 1000, { kind: 'external' });
    assert.equal(r.joint.mode, 'mix');
    const m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700, 1000], [400]);
    expectHearing(agent, m.get(agent)!, [400, 1000], [700]);
    expectHearing(ext, m.get(ext)!, [400, 700], [1000]);
  });

  it('listener hears both parties; nobody hears the listener; monitors do not count as parties', async () => {
    r.joint.close();
    r = rig(2);
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    const sup = join(r, 'sup', 1300, { kind: 'agent', role: 'listener' });
    assert.equal(r.joint.mode, 'mix');
    const m = await settle(r);
    expectHearing(sup, m.get(sup)!, [400, 700], [1300]);
    expectHearing(caller, m.get(caller)!, [700], [400, 1300]);
    expectHearing(agent, m.get(agent)!, [400], [700, 1300]);
  });

  it('coach (whisper): the agent hears the coach, the caller does not', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    const sup = join(r, 'sup', 1300, { kind: 'agent', role: 'coach' });
    const m = await settle(r);
    expectHearing(agent, m.get(agent)!, [400, 1300], [700]);
    expectHearing(caller, m.get(caller)!, [700], [400, 1300]);
    expectHearing(sup, m.get(sup)!, [400, 700], [1300]);
  });

  it('barge: all hear all; a listener promoted to barge becomes heard', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    const sup = join(r, 'sup', 1300, { kind: 'agent', role: 'listener' });
    await ticks(r.clock, 5);
    r.joint.setRole('sup', 'barge');
    const m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700, 1300], [400]);
    expectHearing(agent, m.get(agent)!, [400, 1300], [700]);
    expectHearing(sup, m.get(sup)!, [400, 700], [1300]);
    // Monitor leaves: back to the untouched relay.
    r.joint.remove('sup');
    r.ports.delete('sup');
    assert.equal(r.joint.mode, 'relay');
  });

  it('hold: the held party hears its hold frames, nobody hears it; unhold restores the conference', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    const ext = join(r, 'ext', 1000, { kind: 'external' });
    r.joint.setHold('caller', renderTone({ name: 'hold', segments: [{ freqs: [HOLD_HZ], ms: 1000 }] }, 'PCMU'));
    assert.equal(r.joint.isHeld('caller'), true);
    let m = await settle(r);
    expectHearing(caller, m.get(caller)!, [HOLD_HZ], [400, 700, 1000]);
    expectHearing(agent, m.get(agent)!, [1000], [400, 700, HOLD_HZ]);
    expectHearing(ext, m.get(ext)!, [700], [400, 1000, HOLD_HZ]);
    r.joint.setHold('caller', null);
    m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700, 1000], [HOLD_HZ]);
    expectHearing(agent, m.get(agent)!, [400, 1000], []);
  });

  it('hold with two parties leaves the relay for the mixer and comes back', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    r.joint.setHold('caller', renderTone({ name: 'hold', segments: [{ freqs: [HOLD_HZ], ms: 1000 }] }, 'PCMU'));
    assert.equal(r.joint.mode, 'mix');
    const m = await settle(r);
    expectHearing(caller, m.get(caller)!, [HOLD_HZ], [700]);
    // The agent hears silence: no tone at all, not the caller.
    assert.ok(agent.frames.slice(m.get(agent)!).every((f) => f.every((b) => b === 0xff)));
    r.joint.setHold('caller', null);
    assert.equal(r.joint.mode, 'relay');
  });

  it('mute: nobody hears the muted party, it still hears everyone (mixer and relay)', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    r.joint.setMute('agent', true);
    assert.equal(r.joint.isMuted('agent'), true);
    let m = await settle(r);
    expectHearing(agent, m.get(agent)!, [400], []);
    assert.equal(caller.frames.length, 0, 'relay: nothing of a muted agent reaches the caller');
    const ext = join(r, 'ext', 1000, { kind: 'external' });
    m = await settle(r);
    expectHearing(caller, m.get(caller)!, [1000], [700, 400]);
    expectHearing(ext, m.get(ext)!, [400], [700, 1000]);
    expectHearing(agent, m.get(agent)!, [400, 1000], [700]);
  });

  it('PCMU and PCMA parties mix: each hears the other in its own law', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller', codec: 'PCMU' });
    const agent = join(r, 'agent', 700, { kind: 'agent', codec: 'PCMA' });
    assert.equal(r.joint.mode, 'mix');
    const m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700], [400]);
    expectHearing(agent, m.get(agent)!, [400], [700]);
    assert.ok(agent.frames.slice(m.get(agent)!).every((f) => f.length === 160));
  });

  it('30 ms packets (paced at 30 ms) from one party are mixed into 20 ms frames without losing its voice', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    join(r, 'agent', 700, { kind: 'agent' });
    const ext = join(r, 'ext', 1000, { kind: 'external', samples: 240 });
    const m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700, 1000], [400]);
    expectHearing(ext, m.get(ext)!, [400, 700], [1000]);
    // Nothing of the 30 ms talker was thrown away: its FIFO absorbs the 20/30 ms beat.
    assert.equal(r.joint.stats.mixer.trimmedSamples, 0);
  });

  it('a source running fast (≈320 samples per 20 ms) is trimmed instead of growing latency', async () => {
    join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    const fast = new TonePort('fast', 'PCMU', 1000, 6000, 240);
    r.ports.set('fast', fast);
    r.joint.add({ id: 'fast', port: fast, codec: 'PCMU', role: 'party', kind: 'external' });
    // Talks twice per tick (the rig's loop and this one), each paced for 30 ms: twice real time.
    const off = r.clock.subscribe(() => fast.talk());
    const m = await settle(r);
    off();
    expectHearing(agent, m.get(agent)!, [400, 1000], [700]);
    assert.ok(r.joint.stats.mixer.trimmedSamples > 0);
  });

  it('relay ↔ mix switches keep every port on one continuous timeline and keep the audio', async () => {
    const caller = join(r, 'caller', 400, { kind: 'caller' });
    const agent = join(r, 'agent', 700, { kind: 'agent' });
    const modes: string[] = [];
    r.joint.on('mode', (mode) => modes.push(mode));
    let m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700], [400]);
    const ext = join(r, 'ext', 1000, { kind: 'external' });
    m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700, 1000], [400]);
    r.joint.remove('ext');
    r.ports.delete('ext');
    m = await settle(r);
    expectHearing(caller, m.get(caller)!, [700], [400, 1000]);
    expectHearing(agent, m.get(agent)!, [400], [700, 1000]);
    assert.deepEqual(modes, ['mix', 'relay']);
    for (const p of [caller, agent]) {
      for (let i = 1; i < p.timestamps.length; i++) {
        const step = (p.timestamps[i] - p.timestamps[i - 1]) >>> 0;
        assert.equal(step, 160, `${p.name}: timestamp step ${step} at frame ${i} of ${p.timestamps.length}`);
      }
    }
    assert.ok(ext.frames.length > 0);
  });

  it('recording tap: caller left, what the caller hears right, through relay, mix and hold', async () => {
    const left: Buffer[] = [];
    const right: Buffer[] = [];
    r.joint.addTap({ pushCaller: (p) => left.push(Buffer.from(p)), pushAgent: (p) => right.push(Buffer.from(p)) }, 'caller');
    join(r, 'caller', 400, { kind: 'caller' });
    join(r, 'agent', 700, { kind: 'agent' });
    const share = (frames: Buffer[], from: number, hz: number): number => {
      const g = new Goertzel(hz);
      for (let i = from; i < frames.length; i++) g.pushG711(frames[i], 'PCMU');
      return g.share;
    };
    await ticks(r.clock, WINDOW);
    assert.ok(share(left, 0, 400) > 0.8 && share(right, 0, 700) > 0.8, 'relay');
    assert.ok(share(right, 0, 400) < NOT_HEARD);
    let l0 = left.length;
    let r0 = right.length;
    join(r, 'ext', 1000, { kind: 'external' });
    await ticks(r.clock, SETTLE);
    l0 = left.length;
    r0 = right.length;
    await ticks(r.clock, WINDOW);
    assert.ok(left.length - l0 >= WINDOW / 2 && right.length - r0 >= WINDOW / 2);
    assert.ok(share(left, l0, 400) > 0.8, 'mix: left is the caller');
    assert.ok(share(right, r0, 700) > HEARD && share(right, r0, 1000) > HEARD && share(right, r0, 400) < NOT_HEARD, 'mix: right is the others');
    r.joint.setHold('caller', renderTone({ name: 'hold', segments: [{ freqs: [HOLD_HZ], ms: 1000 }] }, 'PCMU'));
    l0 = left.length;
    r0 = right.length;
    await ticks(r.clock, 10);
    assert.equal(left.length, l0, 'held caller: nothing on the left');
    assert.equal(right.length, r0, 'held caller: hold frames are not recorded');
  });

  it('several taps hear the same frames; a removed tap gets nothing more, the others go on', async () => {
    const frames = (): { left: Buffer[]; right: Buffer[]; tap: { pushCaller(p: Buffer): void; pushAgent(p: Buffer): void } } => {
      const left: Buffer[] = [];
      const right: Buffer[] = [];
      return { left, right, tap: { pushCaller: (p) => left.push(Buffer.from(p)), pushAgent: (p) => right.push(Buffer.from(p)) } };
    };
    const rec = frames();
    const fork = frames();
    r.joint.addTap(rec.tap, 'caller');
    join(r, 'caller', 400, { kind: 'caller' });
    r.joint.addTap(fork.tap, 'caller');
    assert.equal(r.joint.tapCount, 2);
    join(r, 'agent', 700, { kind: 'agent' });
    await ticks(r.clock, WINDOW);
    assert.ok(rec.left.length > 0 && rec.right.length > 0);
    assert.deepEqual(fork.left, rec.left, 'both taps got the same caller frames');
    assert.deepEqual(fork.right, rec.right, 'both taps got the same agent frames');
    r.joint.removeTap(fork.tap);
    r.joint.removeTap(fork.tap);
    const seen = fork.left.length + fork.right.length;
    const recBefore = rec.left.length;
    await ticks(r.clock, WINDOW);
    assert.equal(fork.left.length + fork.right.length, seen, 'a removed tap gets nothing');
    assert.ok(rec.left.length > recBefore, 'the other tap goes on');
    r.joint.close();
    assert.equal(r.joint.tapCount, 0);
    r.joint.addTap(fork.tap, 'caller');
    assert.equal(r.joint.tapCount, 0, 'no taps on a closed joint');
  });

  it('errors: JOINT_FULL beyond maxParties (monitors not counted), unknown and duplicate ids, add after close', () => {
    r.joint.close();
    r = rig(2);
    join(r, 'a', 400);
    join(r, 'b', 700);
    const full = (): TonePort => join(r, 'c', 1000);
    assert.throws(full, (e: unknown) => e instanceof MediaError && e.code === 'JOINT_FULL');
    r.ports.delete('c');
    join(r, 'mon', 1300, { role: 'listener' });
    assert.throws(() => r.joint.setRole('mon', 'party'), (e: unknown) => e instanceof MediaError && e.code === 'JOINT_FULL');
    assert.throws(() => r.joint.setHold('nobody', null), (e: unknown) => e instanceof MediaError && e.code === 'JOINT_UNKNOWN_PARTICIPANT');
    assert.throws(() => r.joint.remove('nobody'), (e: unknown) => e instanceof MediaError && e.code === 'JOINT_UNKNOWN_PARTICIPANT');
    assert.throws(() => join(r, 'a', 400), (e: unknown) => e instanceof MediaError && e.code === 'JOINT_DUPLICATE_PARTICIPANT');
    assert.deepEqual(r.joint.participants.map((p) => p.id), ['a', 'b', 'mon']);
    r.joint.close();
    r.joint.close();
    assert.equal(r.joint.mode, 'idle');
    assert.throws(() => join(r, 'z', 400), (e: unknown) => e instanceof MediaError && e.code === 'JOINT_CLOSED');
    // Closed: ports are no longer listened to.
    assert.equal(r.ports.get('a')!.listenerCount('audio'), 0);
  });
});
