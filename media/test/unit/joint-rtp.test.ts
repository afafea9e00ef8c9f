import assert from 'node:assert/strict';
import { MediaJoint } from '../../joint/media-joint';
import { RtpSessionPort } from '../../joint/rtp-session-port';
import { PortPool } from '../../rtp/port-pool';
import { RtpSession } from '../../rtp/rtp-session';
import { MediaClock } from '../../tones/media-clock';
import { TonePlayer } from '../../tones/tone-player';
import { renderTone } from '../../tones/tone';
import { Goertzel } from '../../tones/goertzel';
import { ticks, TonePort } from '../helpers/tone-port';

interface Seen {
  ssrc: number;
  seq: number;
  ts: number;
  marker: boolean;
  pt: number;
  payload: Buffer;
}

/**
 * The caller's real RtpSession on loopback joined through RtpSessionPort, a second RtpSession as
 * the caller's phone: what the phone receives on the wire across hold tone → relay → mix → relay.
 */
describe('media joint with a real RTP session (RtpSessionPort)', function () {
  this.timeout(20000);
  const pool = new PortPool({ min: 44100, max: 44199 });

  it('one SSRC, contiguous sequence numbers and 160-sample timestamp steps across tone, relay, mix and relay; agent DTMF on the wire', async () => {
    const clock = new MediaClock();
    const leg = await RtpSession.open({ pool, host: '127.0.0.1' });
    const phone = await RtpSession.open({ pool, host: '127.0.0.1' });
    const closeAll = (): void => {
      leg.close();
      phone.close();
    };
    try {
      leg.setRemote('127.0.0.1', phone.localPort);
      phone.setRemote('127.0.0.1', leg.localPort);
      leg.configure({ payloadType: 0, telephoneEventPayloadType: 101 });
      // No telephone-event on the phone side: its RFC 4733 packets then arrive as plain packets to look at.
      phone.configure({ payloadType: 0 });
      const seen: Seen[] = [];
      phone.on('packet', (h, payload) => seen.push({ ssrc: h.ssrc, seq: h.sequenceNumber, ts: h.timestamp, marker: h.marker, pt: h.payloadType, payload: Buffer.from(payload) }));
      const phoneTone = renderTone({ name: 'phone', segments: [{ freqs: [400], ms: 1000 }] }, 'PCMU');
      const phoneTalk = new TonePlayer(clock, phone, phoneTone);
      const agent = new TonePort('agent', 'PCMU', 700);
      const ext = new TonePort('ext', 'PCMU', 1000);
      const talkers = [agent, ext];
      const offTalk = clock.subscribe(() => {
        for (const t of talkers) if (t === agent || joint.has('ext')) t.talk();
      });
      const joint = new MediaJoint({ clock, maxParties: 6 });
      phoneTalk.start();

      // The caller waits with a tone from its own session, as the gateway does before an agent.
      const hold = new TonePlayer(clock, leg, renderTone({ name: 'hold', segments: [{ freqs: [425], ms: 1000 }] }, 'PCMU'));
      hold.start();
      await ticks(clock, 10);
      hold.stop();
      joint.add({ id: 'caller', port: new RtpSessionPort(leg, 0), codec: 'PCMU', role: 'party', kind: 'caller' });
      joint.add({ id: 'agent', port: agent, codec: 'PCMU', role: 'party', kind: 'agent' });
      assert.equal(joint.mode, 'relay');
      await ticks(clock, 20);
      const relayFrom = seen.length - 10;
      agent.emit('telephoneEvent', Buffer.from([5, 0x0a, 0, 160]), true, 777);
      agent.emit('telephoneEvent', Buffer.from([5, 0x8a, 1, 64]), false, 777);
      const a0 = agent.mark;
      joint.add({ id: 'ext', port: ext, codec: 'PCMU', role: 'party', kind: 'external' });
      assert.equal(joint.mode, 'mix');
      await ticks(clock, 5);
      const mixFrom = seen.length;
      const a1 = agent.mark;
      await ticks(clock, 25);
      const mixTo = seen.length;
      joint.remove('ext');
      assert.equal(joint.mode, 'relay');
      await ticks(clock, 20);
      offTalk();
      phoneTalk.stop();
      joint.close();
      await ticks(clock, 3);

      const audio = seen.filter((p) => p.pt === 0);
      assert.ok(audio.length > 60, `${audio.length} audio packets at the phone`);
      assert.ok(seen.every((p) => p.ssrc === seen[0].ssrc), 'one SSRC throughout');
      for (let i = 1; i < seen.length; i++) {
        assert.equal(seen[i].seq, (seen[i - 1].seq + 1) & 0xffff, `sequence gap at packet ${i}`);
      }
      for (let i = 1; i < audio.length; i++) {
        const step = (audio[i].ts - audio[i - 1].ts) >>> 0;
        // The DTMF event sits between two audio packets and takes its own timeline slot.
        assert.ok(step === 160 || step === 320, `timestamp step ${step} at audio packet ${i}`);
      }
      const dtmf = seen.filter((p) => p.pt === 101);
      assert.equal(dtmf.length, 2, 'the agent’s two RFC 4733 packets reached the phone');
      assert.equal(dtmf[0].payload[0], 5);

      const share = (from: number, to: number, hz: number): number => {
        const g = new Goertzel(hz);
        for (let i = from; i < to; i++) if (seen[i].pt === 0) g.pushG711(seen[i].payload, 'PCMU');
        return g.share;
      };
      assert.ok(share(relayFrom, relayFrom + 10, 700) > 0.8, 'relay: the phone hears the agent');
      assert.ok(share(mixFrom, mixTo, 700) > 0.12 && share(mixFrom, mixTo, 1000) > 0.12, 'mix: the phone hears agent and external');
      assert.ok(share(mixFrom, mixTo, 400) < 0.03, 'mix: the phone does not hear itself');
      assert.ok(agent.heard(400, a1) > 0.12 && agent.heard(1000, a1) > 0.12, 'the agent hears the phone through the real session');
      assert.ok(a1 > a0);
    } finally {
      closeAll();
    }
  });
});
