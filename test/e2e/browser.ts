import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './harness';
import { PEER_TONES, writeToneWav, type ToneReport } from './tones';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SHOTS = path.join(ROOT, 'test-output', 'screenshots');

/**
 * Headless Debian Chromium with a fake microphone, as FIELD-NOTES describes (Playwright gives it a
 * fresh profile). `fakeMicrophone: false` leaves the fake device out: a PC without a microphone.
 * `toneHz`: the fake microphone plays that tone (a WAV in a temp dir, removed when the browser
 * closes) instead of Chromium's beeps: a tone peer whose voice other parties can tell apart.
 */
export async function launchChromium(opts: { fakeMicrophone?: boolean; executablePath?: string; toneHz?: number } = {}): Promise<Browser> {
  const wav = opts.toneHz !== undefined && opts.fakeMicrophone !== false ? writeToneWav(opts.toneHz) : null;
  let browser: Browser;
  try {
    browser = await launchWith(opts, wav ? [`--use-file-for-fake-audio-capture=${wav.file}`] : []);
  } catch (err) {
    wav?.remove();
    throw err;
  }
  if (wav) browser.on('disconnected', wav.remove);
  return browser;
}

function launchWith(opts: { fakeMicrophone?: boolean; executablePath?: string }, extra: string[]): Promise<Browser> {
  return chromium.launch({
    // executablePath: a wrapper that runs Chromium elsewhere (agent-remote: in a network namespace).
    executablePath: opts.executablePath ?? CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--use-fake-ui-for-media-stream',
      ...(opts.fakeMicrophone === false ? [] : ['--use-fake-device-for-media-stream']),
      '--allow-loopback-in-peer-connection',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--autoplay-policy=no-user-gesture-required',
      ...extra,
    ],
  });
}

/**
 * Installed in the agent page by startToneDetector(): an AnalyserNode on the call's remote audio
 * track, sampled every 100 ms, summing linear power per FFT bin; report() gives each candidate's
 * share of the power between 200 and 3800 Hz (G.711's band), ±20 Hz around it (the FFT window
 * spreads a tone over a few 5.9 Hz bins). Test code, not part of the product page.
 */
const TONE_DETECTOR = `(() => {
  const w = window;
  if (!w.__ccedgeTones) {
    const st = { ctx: null, analyser: null, track: null, acc: null, buf: null, time: null, snaps: 0, sq: 0, n: 0 };
    const attach = () => {
      const pc = w.ccedge && w.ccedge.pc();
      const rx = pc ? pc.getReceivers().find((r) => r.track && r.track.kind === 'audio') : null;
      if (!rx) return false;
      if (st.track === rx.track) return true;
      if (st.ctx) st.ctx.close();
      const ctx = new AudioContext();
      const src = ctx.createMediaStreamSource(new MediaStream([rx.track]));
      const an = ctx.createAnalyser();
      an.fftSize = 8192;
      an.smoothingTimeConstant = 0;
      src.connect(an);
      Object.assign(st, { ctx, analyser: an, track: rx.track, acc: new Float64Array(an.frequencyBinCount), buf: new Float32Array(an.frequencyBinCount), time: new Float32Array(an.fftSize) });
      return true;
    };
    const reset = () => {
      if (st.acc) st.acc.fill(0);
      st.snaps = 0; st.sq = 0; st.n = 0;
    };
    setInterval(() => {
      if (!st.analyser || st.track.readyState !== 'live') return;
      st.analyser.getFloatFrequencyData(st.buf);
      for (let i = 0; i < st.buf.length; i++) if (Number.isFinite(st.buf[i])) st.acc[i] += Math.pow(10, st.buf[i] / 10);
      st.analyser.getFloatTimeDomainData(st.time);
      for (let i = 0; i < st.time.length; i++) st.sq += st.time[i] * st.time[i];
      st.n += st.time.length;
      st.snaps++;
    }, 100);
    w.__ccedgeTones = {
      start: () => { const ok = attach(); reset(); return ok; },
      report: (candidates) => {
        const binHz = st.ctx ? st.ctx.sampleRate / st.analyser.fftSize : 1;
        const band = (lo, hi) => { let p = 0; if (!st.acc) return 0; for (let i = Math.ceil(lo / binHz); i <= Math.floor(hi / binHz) && i < st.acc.length; i++) p += st.acc[i]; return p; };
        const total = band(200, 3800);
        const shares = {};
        for (const hz of candidates) shares[hz] = total > 0 ? Math.min(1, band(hz - 20, hz + 20) / total) : 0;
        return { shares, rms: st.n ? Math.sqrt(st.sq / st.n) * 32768 : 0, samples: st.snaps * 800 };
      },
    };
  }
  return window.__ccedgeTones.start();
})()`;

/**
 * Starts (or restarts) measuring the frequencies the agent hears on the page's current call. False
 * when the page has no call audio yet (call again once connected).
 */
export async function startToneDetector(page: Page): Promise<boolean> {
  return page.evaluate(TONE_DETECTOR) as Promise<boolean>;
}

/**
 * What the agent heard since startToneDetector(): share per candidate frequency. `samples` counts
 * the measured time in 8 kHz samples (100 ms snapshots × 800), comparable with the node meters.
 */
export async function pageHears(page: Page, candidates: readonly number[] = PEER_TONES): Promise<ToneReport> {
  return page.evaluate((c) => (globalThis as unknown as { __ccedgeTones: { report(c: readonly number[]): ToneReport } }).__ccedgeTones.report(c), candidates);
}

export interface AgentPage {
  context: BrowserContext;
  page: Page;
  status(): Promise<string>;
  shot(name: string): Promise<void>;
}

/** Opens /agent in its own browser context (its own session storage) and logs in. */
export async function openAgent(browser: Browser, httpPort: number, agent: string, password: string, opts: { login?: boolean; origin?: string; url?: string } = {}): Promise<AgentPage> {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  // origin: where the page ends up (https:// on another PC); url: what the agent types (may redirect there).
  const origin = opts.origin ?? `http://127.0.0.1:${httpPort}`;
  await context.grantPermissions(['microphone'], { origin });
  const page = await context.newPage();
  await page.goto(opts.url ?? `${origin}/agent`);
  const ap: AgentPage = {
    context,
    page,
    status: async () => ((await page.getByRole('status').first().textContent()) ?? '').trim(),
    shot: async (name: string) => {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
    },
  };
  if (opts.login !== false) {
    await page.getByLabel('Agent').fill(agent);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Available' }).waitFor();
  }
  return ap;
}

/** Inbound audio as the browser sees it: packets and level from getStats(). */
export async function inboundAudio(page: Page): Promise<{ packetsReceived: number; audioLevel: number; bytesSent: number }> {
  return page.evaluate(async () => {
    // Runs in the page: the server's tsconfig has no DOM types, so the shapes are spelled out.
    type Stats = { forEach(fn: (s: { type: string; kind?: string; packetsReceived?: number; audioLevel?: number; bytesSent?: number }) => void): void };
    const w = globalThis as unknown as { ccedge: { pc(): { getStats(): Promise<Stats> } | null } };
    const pc = w.ccedge.pc();
    if (!pc) return { packetsReceived: 0, audioLevel: 0, bytesSent: 0 };
    const stats = await pc.getStats();
    let packetsReceived = 0;
    let audioLevel = 0;
    let bytesSent = 0;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        packetsReceived = s.packetsReceived ?? 0;
        audioLevel = s.audioLevel ?? 0;
      }
      if (s.type === 'outbound-rtp' && s.kind === 'audio') bytesSent = s.bytesSent ?? 0;
    });
    return { packetsReceived, audioLevel, bytesSent };
  });
}
