/**
 * Supervisor page (served by the appliance at GET /supervisor). Login over POST /supervisor/login
 * (the agent page's form and rules; agents are refused with 403), then the live board over
 * /supervisor/ws (protocol in gateway/supervisor/protocol.ts): every agent and queue, the waiting
 * callers, and the actions Away, Log out, Pause/Resume, Listen, Whisper, Barge and Stop.
 */
import type { LoginRequest } from '../../agent-ui/protocol';
import { postLogin } from '../../agent-ui/page/login';
import { CallMedia, errorText } from '../../agent-ui/page/media';
import { Signalling } from '../../agent-ui/page/signalling';
import type { MonitorMode, SupervisorAgentRow, SupervisorClientMessage, SupervisorQueueRow, SupervisorServerMessage } from '../../supervisor/protocol';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Outgoing = DistributiveOmit<Exclude<SupervisorClientMessage, { type: 'hello' }>, 'v' | 'ref'>;

const STORAGE_KEY = 'ccedge.supervisor.session';
const STATE_LABEL: Record<SupervisorAgentRow['state'], string> = {
  offline: 'Offline',
  available: 'Available',
  ringing: 'Ringing',
  'on-call': 'On call',
  'wrap-up': 'Wrap-up',
  away: 'Away',
};
const MODE_LABEL: Record<MonitorMode, string> = { listen: 'Listen', whisper: 'Whisper', barge: 'Barge' };

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

const ui = {
  sessionBar: $('session-bar'),
  who: $('who'),
  conn: $('conn'),
  signout: $<HTMLButtonElement>('signout'),
  alert: $('alert'),
  loginView: $('login-view'),
  loginForm: $<HTMLFormElement>('login-form'),
  loginAgent: $<HTMLInputElement>('login-agent'),
  loginPassword: $<HTMLInputElement>('login-password'),
  loginSubmit: $<HTMLButtonElement>('login-submit'),
  boardView: $('board-view'),
  awayReason: $<HTMLSelectElement>('away-reason'),
  agents: $('agents'),
  queues: $('queues'),
  monitorStatus: $('monitor-status'),
  audio: $<HTMLAudioElement>('monitor-audio'),
};

interface Session {
  token: string;
  name: string;
  displayName: string;
}

let session: Session | null = loadSession();
let online = false;
let connText = '';
let monitoringAvailable = false;
const agents = new Map<string, SupervisorAgentRow>();
const queues = new Map<string, SupervisorQueueRow>();
/** The call this page monitors (one at a time), and how. */
let monitor: { callId: string; mode: MonitorMode } | null = null;
/** Server clock minus local clock (ms), from the login response's Date header. */
let clockOffsetMs = 0;

const media = new CallMedia(ui.audio, (message) => showAlert(message));
const signalling = new Signalling<SupervisorServerMessage, Outgoing>(wsUrl(), () => session?.token ?? null, {
  opened: () => {
    connText = 'Connecting…';
    renderSession();
  },
  message: (msg) => onMessage(msg),
  down: (retryInMs) => {
    online = false;
    connText = `Connection lost; retrying in ${Math.round(retryInMs / 1000)} s`;
    renderSession();
  },
});

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/supervisor/ws`;
}

function loadSession(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as Session | null;
    return s && typeof s.token === 'string' && typeof s.name === 'string' ? s : null;
  } catch {
    return null;
  }
}

function showAlert(text: string): void {
  ui.alert.textContent = text;
}

function clearAlert(): void {
  ui.alert.textContent = '';
}

// ---------------------------------------------------------------------------------------------
// Messages

function onMessage(msg: SupervisorServerMessage): void {
  switch (msg.type) {
    case 'welcome':
      signalling.markWelcomed();
      online = true;
      connText = '';
      monitoringAvailable = msg.monitoring;
      if (session) session.displayName = msg.supervisor.displayName;
      fillReasons(msg.awayReasons);
      renderSession();
      return;
    case 'board':
      agents.clear();
      queues.clear();
      for (const a of msg.agents) agents.set(a.name, a);
      for (const q of msg.queues) queues.set(q.name, q);
      renderBoard();
      return;
    case 'changes':
      for (const a of msg.agents) agents.set(a.name, a);
      for (const q of msg.queues) queues.set(q.name, q);
      for (const n of msg.removedAgents) agents.delete(n);
      for (const n of msg.removedQueues) queues.delete(n);
      renderBoard();
      return;
    case 'done':
      clearAlert();
      return;
    case 'monitorOffer':
      void answerMonitor(msg.callId, msg.mode, msg.sdp);
      return;
    case 'monitoring':
      monitor = { callId: msg.callId, mode: msg.mode };
      media.setMuted(msg.mode === 'listen');
      renderBoard();
      return;
    case 'monitorEnded':
      if (monitor?.callId === msg.callId) stopMedia();
      renderBoard();
      return;
    case 'error':
      if (msg.code === 'WS_SESSION_INVALID') {
        endSession(`Signed out: ${msg.message}`, false);
        return;
      }
      if (msg.code === 'WS_NOT_ALLOWED' && !online) {
        endSession(msg.message, false);
        return;
      }
      showAlert(msg.message);
      return;
    case 'pong':
      return;
  }
}

async function answerMonitor(callId: string, mode: MonitorMode, sdp: string): Promise<void> {
  try {
    const answer = await media.answer(sdp);
    // Listen: the supervisor's microphone stays off (the server does not mix it either).
    media.setMuted(mode === 'listen');
    monitor = { callId, mode };
    signalling.send({ type: 'webrtcAnswer', callId, sdp: answer });
    renderBoard();
  } catch (err) {
    showAlert(`Monitoring audio failed: ${errorText(err)}`);
    signalling.send({ type: 'stopMonitor', callId });
  }
}

function stopMedia(): void {
  media.close();
  monitor = null;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function fillReasons(reasons: string[]): void {
  const current = ui.awayReason.value;
  ui.awayReason.replaceChildren(
    ...reasons.map((r) => {
      const o = document.createElement('option');
      o.value = r;
      o.textContent = r;
      return o;
    }),
  );
  if (reasons.includes(current)) ui.awayReason.value = current;
}

function renderSession(): void {
  const loggedIn = session !== null;
  ui.loginView.hidden = loggedIn;
  ui.boardView.hidden = !loggedIn;
  ui.sessionBar.hidden = !loggedIn;
  ui.who.textContent = session ? `${session.displayName} (supervisor)` : '';
  ui.conn.textContent = online ? '' : connText;
  ui.conn.classList.toggle('conn-down', !online && connText !== '');
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function button(text: string, onClick: () => void, opts: { label?: string; pressed?: boolean; disabled?: boolean; cls?: string } = {}): HTMLButtonElement {
  const b = el('button', text, `btn ${opts.cls ?? ''}`.trim());
  b.type = 'button';
  if (opts.label) b.setAttribute('aria-label', opts.label);
  if (opts.pressed !== undefined) b.setAttribute('aria-pressed', String(opts.pressed));
  b.disabled = opts.disabled ?? false;
  b.addEventListener('click', onClick);
  return b;
}

/** A cell whose text the 1 s tick keeps up to date (elapsed time since `since`). */
function clockCell(since: string | null): HTMLTableCellElement {
  const td = el('td', '', 'num');
  if (since) td.dataset.since = since;
  td.textContent = since ? elapsed(since) : '';
  return td;
}

function renderBoard(): void {
  const rows = [...agents.values()].sort((a, b) => a.displayName.localeCompare(b.displayName));
  ui.agents.replaceChildren(...rows.map(agentRow));
  ui.queues.replaceChildren(...[...queues.values()].sort((a, b) => a.name.localeCompare(b.name)).map(queueCard));
  ui.monitorStatus.textContent = monitor ? `${MODE_LABEL[monitor.mode]}: call ${monitor.callId.slice(0, 8)}${monitor.mode === 'listen' ? ' (nobody hears you)' : monitor.mode === 'whisper' ? ' (only the agent hears you)' : ' (everyone hears you)'}` : '';
}

function agentRow(a: SupervisorAgentRow): HTMLTableRowElement {
  const tr = el('tr');
  tr.dataset.agent = a.name;
  const nameCell = el('th', a.displayName);
  nameCell.scope = 'row';
  tr.append(nameCell);
  const stateCell = el('td');
  stateCell.append(el('span', STATE_LABEL[a.state], `pill pill-${a.state}`));
  tr.append(stateCell, el('td', a.reason ?? ''), clockCell(a.since));
  tr.append(el('td', a.callId ? a.callId.slice(0, 8) : '', 'callid'), el('td', a.queue ?? ''), clockCell(a.talkingSince));
  tr.append(el('td', a.connected ? 'Connected' : 'Not connected', a.connected ? 'page-on' : 'page-off'));
  const actions = el('td');
  const box = el('div', undefined, 'actions');
  if (a.state === 'on-call' && a.callId) {
    const callId = a.callId;
    const mine = monitor?.callId === callId;
    for (const mode of ['listen', 'whisper', 'barge'] as const) {
      box.append(
        button(MODE_LABEL[mode], () => startMonitor(callId, mode), {
          pressed: mine && monitor?.mode === mode,
          disabled: !monitoringAvailable,
          cls: 'btn-monitor',
        }),
      );
    }
    box.append(button('Stop', () => signalling.send({ type: 'stopMonitor', callId }), { disabled: !mine }));
  }
  if (a.state !== 'offline') {
    box.append(
      button('Away', () => signalling.send({ type: 'setAgentAway', agent: a.name, reason: ui.awayReason.value }), { disabled: a.state === 'on-call' }),
      button('Log out', () => signalling.send({ type: 'logoutAgent', agent: a.name })),
    );
  }
  actions.append(box);
  tr.append(actions);
  return tr;
}

function startMonitor(callId: string, mode: MonitorMode): void {
  // The microphone prompt shows on the click (a user gesture), before the offer arrives.
  if (mode !== 'listen') media.prepareMic();
  // One call at a time: the page has one audio path.
  if (monitor && monitor.callId !== callId) signalling.send({ type: 'stopMonitor', callId: monitor.callId });
  signalling.send({ type: 'monitor', callId, mode });
}

function queueCard(q: SupervisorQueueRow): HTMLElement {
  const card = el('section', undefined, 'queue');
  card.dataset.queue = q.name;
  card.setAttribute('aria-label', `Queue ${q.name}`);
  const head = el('div', undefined, 'queue-head');
  const h = el('h3', q.name);
  if (q.paused) h.append(el('span', 'Paused', 'pill paused'));
  head.append(h, button(q.paused ? 'Resume' : 'Pause', () => signalling.send({ type: 'pauseQueue', queue: q.name, paused: !q.paused })));
  card.append(head);
  const figures = el('p', undefined, 'queue-figures');
  const longest = el('span');
  longest.append('Longest wait ', Object.assign(el('strong'), { textContent: q.oldestSince ? elapsed(q.oldestSince) : '–' }));
  if (q.oldestSince) (longest.lastChild as HTMLElement).dataset.since = q.oldestSince;
  const waiting = el('span');
  waiting.append('Waiting ', Object.assign(el('strong'), { textContent: String(q.waiting) }));
  const avail = el('span');
  avail.append('Available ', Object.assign(el('strong'), { textContent: String(q.agents.available) }), ' · On call ', Object.assign(el('strong'), { textContent: String(q.agents['on-call']) }));
  figures.append(waiting, longest, avail);
  card.append(figures);
  if (q.callers.length === 0) {
    card.append(el('p', 'No callers waiting', 'empty'));
    return card;
  }
  const table = el('table', undefined, 'grid');
  table.setAttribute('aria-label', `Callers waiting in ${q.name}`);
  const head2 = el('tr');
  for (const t of ['Caller', 'Waiting', 'Status']) head2.append(Object.assign(el('th', t), { scope: 'col' }));
  table.append(Object.assign(el('thead'), {}), el('tbody'));
  (table.firstChild as HTMLElement).append(head2);
  for (const c of q.callers) {
    const tr = el('tr');
    tr.dataset.call = c.callId;
    tr.append(el('td', c.caller), clockCell(c.queuedAt), el('td', c.phase === 'ringing' ? `Ringing at ${agents.get(c.agent ?? '')?.displayName ?? c.agent ?? ''}` : 'Waiting'));
    (table.lastChild as HTMLElement).append(tr);
  }
  card.append(table);
  return card;
}

function elapsed(sinceIso: string): string {
  const s = Math.max(0, Math.floor((Date.now() + clockOffsetMs - Date.parse(sinceIso)) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0');
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

/** Times in state, talk times and waits count up locally: the server sends only changes. */
function tick(): void {
  for (const node of document.querySelectorAll<HTMLElement>('[data-since]')) {
    const since = node.dataset.since;
    if (since) node.textContent = elapsed(since);
  }
}

// ---------------------------------------------------------------------------------------------
// Session

async function login(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const body: LoginRequest = { agent: ui.loginAgent.value.trim(), password: ui.loginPassword.value };
  if (!body.agent || !body.password) {
    showAlert('Enter your name and password.');
    return;
  }
  ui.loginSubmit.disabled = true;
  try {
    const r = await postLogin('/supervisor/login', body);
    if (r.kind === 'unreachable') {
      showAlert('Cannot reach the appliance. Check the network and try again.');
      return;
    }
    if (r.kind === 'refused') {
      if (r.status === 401) showAlert('Login failed: wrong name or password.');
      else if (r.status === 403) showAlert(`Login refused: ${r.error?.message ?? 'not a supervisor'}.`);
      else showAlert(`Login failed: ${r.error?.message ?? `the appliance answered ${r.status}`}.`);
      ui.loginPassword.value = '';
      ui.loginPassword.focus();
      return;
    }
    clockOffsetMs = r.clockOffsetMs;
    const data = r;
    session = { token: data.token, name: data.agent.name, displayName: data.agent.displayName };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    ui.loginPassword.value = '';
    clearAlert();
    startSession();
  } finally {
    ui.loginSubmit.disabled = false;
  }
}

function startSession(): void {
  online = false;
  connText = 'Connecting…';
  renderSession();
  signalling.start();
}

function endSession(message: string | null, sendLogout: boolean): void {
  if (sendLogout) signalling.send({ type: 'logout' });
  signalling.stop();
  stopMedia();
  session = null;
  online = false;
  agents.clear();
  queues.clear();
  sessionStorage.removeItem(STORAGE_KEY);
  if (message) showAlert(message);
  else clearAlert();
  renderBoard();
  renderSession();
  ui.loginAgent.focus();
}

// ---------------------------------------------------------------------------------------------
// Test hooks (read-only), as on the agent page: the monitoring audio's peer connection

declare global {
  interface Window {
    ccedge: { readonly pc: () => RTCPeerConnection | null; readonly state: () => string };
  }
}

Object.defineProperty(window, 'ccedge', {
  value: Object.freeze({ pc: () => media.pc, state: () => (monitor ? monitor.mode : 'idle') }),
  writable: false,
  configurable: false,
  enumerable: true,
});

ui.loginForm.addEventListener('submit', (ev) => void login(ev));
ui.signout.addEventListener('click', () => endSession(null, true));
window.setInterval(tick, 1000);
renderSession();
if (session) startSession();
else ui.loginAgent.focus();
