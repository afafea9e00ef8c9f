/**
 * Wallboard page (GET /wallboard): per-queue tiles of live KPIs over WebSocket /ws/wallboard
 * (../protocol.ts, v1). The admin token is asked once and kept in this display's localStorage
 * (or taken from `#token=…`, which never reaches the server or its logs). Nothing is loaded from
 * outside the appliance; no framework.
 */
import type { AgentState } from '../../agent-ui/protocol';
import type { KpisMessage, QueueKpi, WallboardClientMessage, WallboardServerMessage } from '../protocol';

const V = 1 satisfies WallboardClientMessage['v'];
const TOKEN_KEY = 'ccedge.wallboard.token';
const BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];
const PING_EVERY_MS = 15_000;
const SILENCE_LIMIT_MS = 40_000;

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from index.html`);
  return el as T;
}

const ui = {
  window: $('window'),
  conn: $('conn'),
  clock: $('clock'),
  forget: $<HTMLButtonElement>('forget'),
  loginView: $('login-view'),
  loginForm: $<HTMLFormElement>('login-form'),
  loginToken: $<HTMLInputElement>('login-token'),
  loginError: $('login-error'),
  board: $('board'),
  tiles: $('tiles'),
  noQueues: $('no-queues'),
  intentsSection: $('intents-section'),
  intentRows: $('intent-rows'),
};

// ---------------------------------------------------------------------------------------------
// Formatting

const STATES: ReadonlyArray<{ state: AgentState; label: string }> = [
  { state: 'available', label: 'Available' },
  { state: 'ringing', label: 'Ringing' },
  { state: 'on-call', label: 'On call' },
  { state: 'wrap-up', label: 'Wrap-up' },
  { state: 'away', label: 'Away' },
  { state: 'offline', label: 'Offline' },
];

const pct = (v: number | null): string => (v === null ? '—' : `${Math.round(v * 1000) / 10}%`);

function mmss(seconds: number | null): string {
  if (seconds === null) return '—';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** ok / warn / bad against a target (warn: within 10 points below it). */
function grade(v: number | null, target: number): string {
  if (v === null) return 'none';
  if (v >= target) return 'ok';
  return v >= target - 0.1 ? 'warn' : 'bad';
}

function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Tiles (built once per queue, then only their texts change)

interface Tile {
  root: HTMLElement;
  values: Map<string, HTMLElement>;
}

const tiles = new Map<string, Tile>();

function kpiCell(tile: Tile, parent: HTMLElement, key: string, label: string, cls = 'kpi'): HTMLElement {
  const box = el('div', cls);
  const l = el('span', 'label', label);
  const v = el('span', 'value', '—');
  v.dataset.kpi = key;
  box.append(l, v);
  parent.append(box);
  tile.values.set(key, v);
  return l;
}

function buildTile(name: string): Tile {
  const root = el('article', 'tile');
  root.dataset.queue = name;
  const id = `tile-${tiles.size}`;
  root.setAttribute('aria-labelledby', id);
  const tile: Tile = { root, values: new Map() };
  const h = el('h2', 'tile-name', name);
  h.id = id;
  root.append(h);
  const head = el('div', 'headline');
  kpiCell(tile, head, 'serviceLevel', 'Service level', 'kpi kpi-big kpi-sl');
  kpiCell(tile, head, 'waiting', 'Waiting', 'kpi kpi-big kpi-waiting');
  kpiCell(tile, head, 'longestWait', 'Longest wait', 'kpi kpi-big kpi-longest');
  root.append(head);
  const grid = el('div', 'grid');
  kpiCell(tile, grid, 'asa', 'ASA');
  kpiCell(tile, grid, 'aht', 'AHT');
  kpiCell(tile, grid, 'abandonRate', 'Abandoned');
  kpiCell(tile, grid, 'occupancy', 'Occupancy');
  kpiCell(tile, grid, 'fcr', 'FCR');
  kpiCell(tile, grid, 'calls', 'Offered / answered');
  root.append(grid);
  const agents = el('ul', 'agents');
  agents.setAttribute('aria-label', 'Agents by state');
  for (const { state, label } of STATES) {
    const li = el('li', `agent-state st-${state}`);
    const n = el('b', 'count', '0');
    n.dataset.state = state;
    li.append(n, document.createTextNode(` ${label}`));
    agents.append(li);
    tile.values.set(`agents.${state}`, n);
  }
  root.append(agents);
  return tile;
}

function renderTile(tile: Tile, q: QueueKpi, msg: KpisMessage): void {
  const v = (k: string): HTMLElement => tile.values.get(k) as HTMLElement;
  setText(v('serviceLevel'), pct(q.serviceLevel));
  const slLabel = v('serviceLevel').previousElementSibling;
  if (slLabel) setText(slLabel, `Service level (${msg.serviceLevelS} s)`);
  setText(v('waiting'), String(q.waiting));
  setText(v('longestWait'), mmss(q.longestWaitS));
  setText(v('asa'), mmss(q.asa));
  setText(v('aht'), mmss(q.aht));
  setText(v('abandonRate'), pct(q.abandonRate));
  setText(v('occupancy'), pct(q.occupancy));
  setText(v('fcr'), pct(q.fcr));
  setText(v('calls'), `${q.offered} / ${q.answered}`);
  for (const { state } of STATES) setText(v(`agents.${state}`), String(q.agents[state] ?? 0));
  tile.root.dataset.sl = grade(q.serviceLevel, msg.targets.serviceLevel);
  tile.root.dataset.fcr = grade(q.fcr, msg.targets.fcr);
  tile.root.classList.toggle('has-waiting', q.waiting > 0);
}

function renderKpis(msg: KpisMessage): void {
  const seen = new Set<string>();
  msg.queues.forEach((q, i) => {
    seen.add(q.name);
    let tile = tiles.get(q.name);
    if (!tile) {
      tile = buildTile(q.name);
      tiles.set(q.name, tile);
    }
    if (ui.tiles.children[i] !== tile.root) ui.tiles.insertBefore(tile.root, ui.tiles.children[i] ?? null);
    renderTile(tile, q, msg);
  });
  for (const [name, tile] of tiles) {
    if (seen.has(name)) continue;
    tile.root.remove();
    tiles.delete(name);
  }
  ui.noQueues.hidden = msg.queues.length > 0;

  ui.intentsSection.hidden = msg.intents.length === 0;
  const rows = msg.intents.map((k) => {
    const tr = el('tr');
    tr.dataset.intent = k.name;
    const th = el('th', undefined, k.name);
    th.scope = 'row';
    tr.append(th);
    const cells: Array<[string, string, string?]> = [
      [pct(k.serviceLevel), 'serviceLevel', grade(k.serviceLevel, msg.targets.serviceLevel)],
      [mmss(k.asa), 'asa'],
      [mmss(k.aht), 'aht'],
      [pct(k.abandonRate), 'abandonRate'],
      [pct(k.occupancy), 'occupancy'],
      [pct(k.fcr), 'fcr', grade(k.fcr, msg.targets.fcr)],
      [String(k.waiting), 'waiting'],
      [mmss(k.longestWaitS), 'longestWait'],
      [String(k.offered), 'offered'],
    ];
    for (const [text, key, g] of cells) {
      const td = el('td', g ? `grade-${g}` : undefined, text);
      td.dataset.kpi = key;
      tr.append(td);
    }
    return tr;
  });
  ui.intentRows.replaceChildren(...rows);

  const from = new Date(msg.window.from);
  setText(ui.window, msg.window.spec === 'today' ? `Today since ${from.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}` : `Last ${msg.window.spec}`);
}

// ---------------------------------------------------------------------------------------------
// Connection

let token: string | null = null;
let ws: WebSocket | null = null;
let attempt = 0;
let retryTimer: number | undefined;
let lastRx = 0;
let live = false;

function setConn(text: string, down: boolean): void {
  setText(ui.conn, text);
  ui.conn.classList.toggle('conn-down', down);
  document.body.classList.toggle('stale', down);
}

function send(msg: WallboardClientMessage): void {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function connect(): void {
  if (!token || ws) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/wallboard`;
  const sock = new WebSocket(url);
  ws = sock;
  lastRx = Date.now();
  sock.onopen = () => {
    lastRx = Date.now();
    send({ v: V, type: 'hello', token: token ?? '' });
  };
  sock.onmessage = (ev: MessageEvent) => {
    lastRx = Date.now();
    if (typeof ev.data !== 'string') return;
    let msg: WallboardServerMessage;
    try {
      msg = JSON.parse(ev.data) as WallboardServerMessage;
    } catch {
      return;
    }
    onMessage(msg);
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    live = false;
    if (token) scheduleReconnect();
  };
}

function onMessage(msg: WallboardServerMessage): void {
  switch (msg.type) {
    case 'kpis':
      attempt = 0;
      live = true;
      setConn('', false);
      showBoard();
      renderKpis(msg);
      break;
    case 'error':
      if (msg.code === 'WS_SESSION_INVALID') {
        signOut('The token was not accepted. Enter the admin token of this appliance.');
      } else if (msg.code === 'WS_UNSUPPORTED_VERSION') {
        setConn('This page is out of date: reload it.', true);
      }
      break;
    default:
      break;
  }
}

function drop(): void {
  const sock = ws;
  ws = null;
  live = false;
  if (!sock) return;
  sock.onopen = sock.onmessage = sock.onclose = null;
  try {
    sock.close();
  } catch {
    /* already closed */
  }
}

function scheduleReconnect(): void {
  if (retryTimer !== undefined) return;
  const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!;
  attempt++;
  setConn(`Connection lost. Reconnecting in ${Math.round(delay / 1000)} s…`, true);
  retryTimer = window.setTimeout(() => {
    retryTimer = undefined;
    connect();
  }, delay);
}

window.setInterval(() => {
  if (!ws) return;
  if (Date.now() - lastRx > SILENCE_LIMIT_MS) {
    drop();
    scheduleReconnect();
  } else if (live) send({ v: V, type: 'ping' });
}, PING_EVERY_MS);

// ---------------------------------------------------------------------------------------------
// Views

function showBoard(): void {
  ui.loginView.hidden = true;
  ui.board.hidden = false;
  ui.forget.hidden = false;
}

function showLogin(error: string): void {
  ui.board.hidden = true;
  ui.forget.hidden = true;
  ui.loginView.hidden = false;
  setText(ui.loginError, error);
  setConn('', false);
  ui.loginToken.focus();
}

function signOut(error = ''): void {
  token = null;
  localStorage.removeItem(TOKEN_KEY);
  window.clearTimeout(retryTimer);
  retryTimer = undefined;
  drop();
  showLogin(error);
}

function start(t: string): void {
  token = t;
  localStorage.setItem(TOKEN_KEY, t);
  setConn('Connecting…', false);
  connect();
}

ui.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const t = ui.loginToken.value.trim();
  if (!t) return;
  ui.loginToken.value = '';
  setText(ui.loginError, '');
  start(t);
});
ui.forget.addEventListener('click', () => signOut());

function tickClock(): void {
  setText(ui.clock, new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
}
window.setInterval(tickClock, 5000);
tickClock();

// `#token=…` (kiosk set-up): keep it, then take it out of the address bar and history.
const fromHash = /^#token=(.+)$/.exec(location.hash)?.[1];
if (fromHash) {
  localStorage.setItem(TOKEN_KEY, decodeURIComponent(fromHash));
  history.replaceState(null, '', location.pathname);
}
const saved = localStorage.getItem(TOKEN_KEY);
if (saved) start(saved);
else showLogin('');
