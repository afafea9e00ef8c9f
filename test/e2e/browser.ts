import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './harness';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SHOTS = path.join(ROOT, 'test-output', 'screenshots');

/**
 * Headless Debian Chromium with a fake microphone, as FIELD-NOTES describes (Playwright gives it a
 * fresh profile). `fakeMicrophone: false` leaves the fake device out: a PC without a microphone.
 */
export async function launchChromium(opts: { fakeMicrophone?: boolean; executablePath?: string } = {}): Promise<Browser> {
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
    ],
  });
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
