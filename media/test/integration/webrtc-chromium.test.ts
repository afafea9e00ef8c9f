import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebRtcLeg, type G711, type WebRtcLegState } from '../../webrtc/webrtc-leg';

const CHROMIUM = '/usr/bin/chromium';

/** The browser half: answers the leg's offer with the (fake) microphone, waits for full gathering. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>leg test</title><script>
let pc = null;
window.answerOffer = async (offer) => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  pc = new RTCPeerConnection({ iceServers: [] });
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  const [t] = pc.getTransceivers();
  await t.sender.replaceTrack(stream.getAudioTracks()[0]);
  t.direction = 'sendrecv';
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((r) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r()));
  }
  return pc.localDescription.sdp;
};
window.rtpStats = async () => {
  const out = { inbound: null, outbound: null, state: pc && pc.connectionState };
  for (const r of (await pc.getStats()).values()) {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.inbound = { packetsReceived: r.packetsReceived, codecId: r.codecId };
    if (r.type === 'outbound-rtp' && r.kind === 'audio') out.outbound = { packetsSent: r.packetsSent };
  }
  return out;
};
</script>`;

function waitState(leg: WebRtcLeg, want: WebRtcLegState, timeoutMs: number): Promise<number> {
  const started = Date.now();
  if (leg.state === want) return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`leg stayed ${leg.state}, wanted ${want}`)), timeoutMs);
    leg.on('state', (s) => {
      if (s !== want) return;
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

describe('WebRtcLeg ↔ headless Chromium (fake microphone)', function () {
  this.timeout(90_000);
  let server: http.Server;
  let url: string;
  let browser: Browser;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.warn(`    ${CHROMIUM} missing: skipping the browser test`);
      this.skip();
    }
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    // launch() uses a fresh temporary profile.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox', '--disable-gpu', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
        '--allow-loopback-in-peer-connection', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-quic',
      ],
    });
  });

  after(async () => {
    await browser?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
  });

  async function call(codec: G711): Promise<{ leg: WebRtcLeg; page: Page; received: () => number }> {
    const page = await browser.newPage();
    await page.goto(url);
    const leg = WebRtcLeg.create({ codec, interfaces: ['127.0.0.1'], portRange: { min: 47000, max: 47999 } });
    let received = 0;
    leg.on('audio', () => received++);
    const answer = await page.evaluate((offer) => (globalThis as unknown as { answerOffer(o: string): Promise<string> }).answerOffer(offer), await leg.createOffer());
    assert.match(answer, new RegExp(`^m=audio \\d+ UDP/TLS/RTP/SAVPF ${codec === 'PCMU' ? 0 : 8}\\b`, 'm'));
    await leg.acceptAnswer(answer);
    await waitState(leg, 'connected', 15_000);
    return { leg, page, received: () => received };
  }

  async function pump(leg: WebRtcLeg, ms: number, fill: number): Promise<void> {
    const frame = Buffer.alloc(160, fill);
    const n = ms / 20;
    for (let i = 0; i < n && leg.state === 'connected'; i++) {
      leg.sendAudio(frame, i === 0, i * 160);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  for (const codec of ['PCMU', 'PCMA'] as const) {
    it(`${codec}: connects; the browser receives our RTP and we receive its fake microphone`, async () => {
      const { leg, page, received } = await call(codec);
      try {
        await pump(leg, 2_000, codec === 'PCMU' ? 0xff : 0xd5);
        const stats = await page.evaluate(() => (globalThis as unknown as { rtpStats(): Promise<{ inbound: { packetsReceived: number } | null; outbound: { packetsSent: number } | null; state: string }> }).rtpStats());
        assert.equal(stats.state, 'connected');
        assert.ok((stats.inbound?.packetsReceived ?? 0) > 50, `browser inbound-rtp: ${JSON.stringify(stats)}`);
        assert.ok(received() > 50, `leg received ${received()} audio packets from the browser`);
      } finally {
        await leg.close();
        await page.close();
      }
    });
  }

  it('the page closing its RTCPeerConnection (DTLS close_notify) fails the leg at once', async () => {
    const { leg, page } = await call('PCMA');
    try {
      await page.evaluate('pc.close()');
      const took = await waitState(leg, 'failed', 5_000);
      assert.ok(took < 2_000, `failed after ${took} ms`);
    } finally {
      await leg.close();
      await page.close();
    }
  });

  it('closing the tab takes the leg to failed in bounded time', async () => {
    const { leg, page } = await call('PCMU');
    try {
      const pumping = pump(leg, 15_000, 0xff);
      await new Promise((r) => setTimeout(r, 500));
      await page.close();
      const took = await waitState(leg, 'failed', 15_000);
      // werift 0.24.4 sees no DTLS alert when Chromium's tab goes: the leg's silence watchdog decides.
      assert.ok(took <= 12_500, `failed after ${took} ms`);
      console.log(`      (leg failed ${took} ms after the tab closed)`);
      await pumping;
    } finally {
      await leg.close();
    }
  });
});
