import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Locator } from 'playwright-core';
import WebSocket from 'ws';
import { Acd } from '../../acd/acd';
import { createLogger } from '../../logging';
import { KpiRecorder } from '../../kpi/kpi-recorder';
import { KpiService } from '../../kpi/kpi-service';
import { KpiStore } from '../../kpi/kpi-store';
import { serveWallboardAsset } from '../../wallboard/assets';
import type { WallboardServerMessage } from '../../wallboard/protocol';
import { adminTokenCheck, WallboardHub } from '../../wallboard/wallboard-hub';
import { openKpiDb } from './kpi-db';

const TOKEN = 'wallboard-test-token-0123456789';

/** The wallboard's server side for real: store, recorder on a real ACD, KPI service, hub, page files. */
async function startWallboard() {
  const env = await openKpiDb();
  const store = new KpiStore(env.db);
  const acd = new Acd({ queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 5 }, { name: 'sales', ringTimeoutS: 20, wrapUpS: 5 }], agents: [{ name: 'alice' }, { name: 'bob', queues: ['sales'] }] });
  const recorder = new KpiRecorder({ store, acd });
  const kpi = new KpiService({ store, recorder, snapshot: () => acd.snapshot(), agentQueues: () => null, throttleMs: 100 });
  await kpi.start();
  const hub = new WallboardHub({ authorise: adminTokenCheck(TOKEN), current: () => kpi.current(), log: createLogger('silent'), helloTimeoutMs: 300 });
  kpi.on('update', (s) => hub.publish(s));
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    serveWallboardAsset(url.pathname, req, res)
      .then((served) => {
        if (!served) res.writeHead(404).end();
      })
      .catch(() => res.writeHead(500).end());
  });
  server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname === '/ws/wallboard') hub.handleUpgrade(req, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    acd,
    hub,
    kpi,
    port,
    stop: async () => {
      kpi.close();
      hub.close();
      acd.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await env.cleanup();
    },
  };
}

/** A ws client that collects messages. */
async function client(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/wallboard`);
  const messages: WallboardServerMessage[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(String(d)) as WallboardServerMessage));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await once(ws, 'open');
  const next = async (type: WallboardServerMessage['type'], timeoutMs = 2000): Promise<WallboardServerMessage> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = messages.findIndex((m) => m.type === type);
      if (i >= 0) return messages.splice(i, 1)[0];
      if (Date.now() > until) throw new Error(`no ${type} message`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { ws, messages, next, closed };
}

describe('wallboard hub (WebSocket /ws/wallboard)', () => {
  let wb: Awaited<ReturnType<typeof startWallboard>>;
  beforeEach(async () => {
    wb = await startWallboard();
  });
  afterEach(() => wb.stop());

  it('a page that says nothing is closed; a wrong token is refused with 4001', async () => {
    const quiet = await client(wb.port);
    assert.equal(await quiet.closed, 4000);
    const wrong = await client(wb.port);
    wrong.ws.send(JSON.stringify({ v: 1, type: 'hello', token: 'not-the-token' }));
    const err = await wrong.next('error');
    assert.equal(err.type === 'error' && err.code, 'WS_SESSION_INVALID');
    assert.equal(await wrong.closed, 4001);
    assert.equal(wb.hub.size, 0);
  });

  it('bad frames get an error and the connection stays; the right token gets the KPIs, then live updates', async () => {
    const c = await client(wb.port);
    c.ws.send('garbage');
    assert.equal(((await c.next('error')) as { code: string }).code, 'WS_BAD_MESSAGE');
    c.ws.send(JSON.stringify({ v: 2, type: 'hello', token: TOKEN }));
    assert.equal(((await c.next('error')) as { code: string }).code, 'WS_UNSUPPORTED_VERSION');
    c.ws.send(JSON.stringify({ v: 1, type: 'ping' }));
    assert.equal(((await c.next('error')) as { code: string }).code, 'WS_NOT_AUTHENTICATED');
    c.ws.send(JSON.stringify({ v: 1, type: 'hello', token: TOKEN }));
    const first = await c.next('kpis');
    assert.ok(first.type === 'kpis');
    assert.deepEqual(first.queues.map((q) => [q.name, q.waiting]), [['support', 0], ['sales', 0]]);
    assert.equal(wb.hub.size, 1);
    c.messages.length = 0;
    wb.acd.enqueue('support', { callId: 'c1', caller: '1001', callerName: null, intent: 'billing' });
    for (;;) {
      const m = await c.next('kpis');
      if (m.type === 'kpis' && m.queues[0].waiting === 1) {
        assert.deepEqual(m.intents.map((i) => [i.name, i.waiting]), [['billing', 1]]);
        break;
      }
    }
    c.ws.send(JSON.stringify({ v: 1, type: 'ping' }));
    await c.next('pong');
    c.ws.close();
  });
});

/** Polls a locator's text until `ok` (the page updates itself; nothing reloads). */
async function until(locator: Locator, ok: (text: string | null) => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: string | null = null;
  while (Date.now() < end) {
    last = await locator.textContent();
    if (ok(last)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`text stayed "${last}"`);
}

describe('wallboard page in Chromium', function () {
  this.timeout(60_000);
  let wb: Awaited<ReturnType<typeof startWallboard>>;
  let browser: Browser;

  before(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
  });
  after(() => browser?.close());
  beforeEach(async () => {
    wb = await startWallboard();
  });
  afterEach(() => wb.stop());

  it('shows a tile per queue and updates it live without a reload; the token leaves the address bar', async () => {
    const page = await browser.newPage();
    let loads = 0;
    page.on('load', () => loads++);
    await page.goto(`http://127.0.0.1:${wb.port}/wallboard#token=${TOKEN}`);
    const support = page.locator('article.tile[data-queue="support"]');
    await support.waitFor();
    assert.equal(await page.locator('article.tile').count(), 2);
    assert.equal(new URL(page.url()).hash, '');
    const kpi = (name: string) => support.locator(`[data-kpi="${name}"]`);
    assert.equal(await kpi('waiting').textContent(), '0');
    assert.equal(await kpi('serviceLevel').textContent(), '—');

    wb.acd.login('alice', { ready: false });
    wb.acd.enqueue('support', { callId: 'c1', caller: '1001', callerName: null, intent: 'billing' });
    await until(kpi('waiting'), (t) => t === '1');
    await until(support.locator('[data-state="away"]'), (t) => t === '1');
    await page.getByRole('heading', { name: 'By intent' }).waitFor();
    await new Promise((r) => setTimeout(r, 1200)); // longest wait counts up
    await until(kpi('longestWait'), (t) => t !== '0:00');

    wb.acd.setAvailable('alice');
    wb.acd.answer('alice', 'c1');
    await until(kpi('serviceLevel'), (t) => t === '100%');
    assert.equal(await kpi('waiting').textContent(), '0');
    // The call waited at least the 1.2 s above; how much more depends on the machine's load.
    assert.match((await kpi('asa').textContent()) ?? '', /^0:0[1-9]$/);
    assert.equal(await support.getAttribute('data-sl'), 'ok');
    assert.equal(await support.locator('[data-state="on-call"]').textContent(), '1');
    assert.equal(loads, 1);
    await page.close();
  });

  it('asks for the token, and says so when it is wrong', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${wb.port}/wallboard`);
    await page.getByLabel('Admin token').fill('wrong-token');
    await page.getByRole('button', { name: 'Show wallboard' }).click();
    await page.getByText('The token was not accepted').waitFor();
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Show wallboard' }).click();
    await page.locator('article.tile[data-queue="sales"]').waitFor();
    await page.reload(); // remembered on this display
    await page.locator('article.tile[data-queue="sales"]').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    await page.close();
  });
});
