/**
 * Agent softphone page (served by the appliance at GET /agent). Login over POST /agent/login,
 * then signalling over WebSocket /ws (protocol.ts, v1) and audio over WebRTC with the appliance.
 * Nothing here loads anything from outside the appliance.
 */
import type { Disposition } from '../../kpi/kpi';
import type { AgentState, CallInfo, ConsultPhase, DeskSettings, ErrorCode, LoginRequest, PartyInfo, QueueFigures, ServerMessage, ShiftCall, TransferMode } from '../protocol';
import { recentCallsText } from '../caller-context';
import { parseTransferTarget, TRANSFER_TARGET_HELP } from '../transfer-target';
import { CallMedia, MediaCancelled, errorText } from './media';
import { Ringer } from './ringer';
import { Signalling } from './signalling';
import { postLogin } from './login';

// ---------------------------------------------------------------------------------------------
// Model

type Phase = 'ringing' | 'answering' | 'connecting' | 'connected';

interface Call {
  info: CallInfo;
  phase: Phase;
  /** Local time the server stops ringing us (null when unknown, e.g. after a reconnect). */
  ringDeadline: number | null;
  connectedAt: number | null;
  held: boolean;
  muted: boolean;
  /** The call's recording, as the server last said (null: not recorded). */
  recording: { paused: boolean } | null;
  /** `ref` of the `answer` we sent: an error with this ref puts the call back to ringing. */
  answerRef: string | null;
  /** The consult in progress (dialing … connected), as the server last said. */
  consult: { target: string; phase: ConsultPhase } | null;
  /** A transfer/consult request sent and not yet answered (its `ref`, what it was). */
  transferPending: { ref: string; target: string; mode: TransferMode } | null;
  /** Everybody on the call (server `parties`); empty until the server sends it. */
  parties: PartyInfo[];
}

/** The server's reply to `disposition` (protocol.ts `dispositionSaved`; spelled out so the page builds with or without it). */
type DispositionSaved = { v: 1; type: 'dispositionSaved'; callId: string; disposition: Disposition };
type PageMessage = ServerMessage | DispositionSaved;

/** The call the agent finished last: its outcome is picked during wrap-up. */
interface LastCall {
  callId: string;
  /** What the server confirmed. */
  disposition: Disposition | null;
  /** Sent, not yet confirmed, and the `ref` it was sent with. */
  pending: Disposition | null;
  ref: string | null;
}

interface Session {
  token: string;
  agent: { name: string; displayName: string };
}

const STORAGE_KEY = 'ccedge.agent.session';
const OFFSET_KEY = 'ccedge.agent.clockOffsetMs';
const LAST_CALL_KEY = 'ccedge.agent.lastCall';

let session: Session | null = null;
let serverState: AgentState = 'offline';
let serverReason: string | null = null;
/** Local time the current server state began (from `state.since`). */
let stateSince: number | null = null;
let call: Call | null = null;
/** Kept in sessionStorage: a page reloaded during wrap-up still offers the outcome buttons. */
let lastCall: LastCall | null = loadLastCall();
/** True between `welcome` and the socket closing. */
let online = false;
let connText = '';
/** Desk settings from the welcome (away reasons, screen pop, wrap-up extension). */
let desk: DeskSettings = { awayReasons: ['break'], screenPopUrl: null, wrapUpExtendS: 30 };
let queueFigures: QueueFigures[] = [];
let history: ShiftCall[] = [];
/** Local time the running wrap-up ends, and its call. */
let wrapUp: { callId: string; endsAt: number } | null = null;
/** The live transcript of the current (or just finished) call; cleared when another call rings. */
let transcript: { callId: string; quality: string | null; lines: number } | null = null;
/** Lines kept on the page (the vault keeps the whole transcript). */
const TRANSCRIPT_MAX_LINES = 300;
/** Why this page cannot offer a microphone (null: it can, or not known yet). */
let micProblem: string | null = null;
/** Wrap-up notes: the call they belong to, the text the server confirmed, a pending save. */
let notes: { callId: string; saved: string; timer: number | undefined } | null = null;
/** Server clock minus local clock (ms), from the Date header of the login response. */
let clockOffsetMs = Number(sessionStorage.getItem(OFFSET_KEY) ?? 0) || 0;

// ---------------------------------------------------------------------------------------------
// DOM

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from index.html`);
  return el as T;
}

const ui = {
  transcriptPanel: $('transcript-panel'),
  transcriptQuality: $('transcript-quality'),
  transcriptLines: $<HTMLOListElement>('transcript-lines'),
  sessionBar: $('session-bar'),
  who: $('who'),
  conn: $('conn'),
  logout: $<HTMLButtonElement>('logout'),
  alert: $('alert'),
  alertDismiss: $<HTMLButtonElement>('alert-dismiss'),
  loginView: $('login-view'),
  loginForm: $<HTMLFormElement>('login-form'),
  loginAgent: $<HTMLInputElement>('login-agent'),
  loginPassword: $<HTMLInputElement>('login-password'),
  loginSubmit: $<HTMLButtonElement>('login-submit'),
  newPasswordFields: $('new-password-fields'),
  loginNewPassword: $<HTMLInputElement>('login-new-password'),
  loginNewPassword2: $<HTMLInputElement>('login-new-password2'),
  insecureWarning: $('insecure-warning'),
  sessionView: $('session-view'),
  state: $('state'),
  stateSince: $('state-since'),
  available: $<HTMLButtonElement>('btn-available'),
  away: $<HTMLButtonElement>('btn-away'),
  callCard: $('call-card'),
  callHeading: $('call-heading'),
  callDetails: $('call-details'),
  callNumber: $('call-number'),
  callName: $('call-name'),
  callQueue: $('call-queue'),
  callTimerLabel: $('call-timer-label'),
  callTimer: $('call-timer'),
  callNote: $('call-note'),
  lastCall: $('last-call'),
  disposition: $('disposition'),
  dispositionButtons: Array.from(document.querySelectorAll<HTMLButtonElement>('#disposition button[data-disposition]')),
  dispositionSaved: $('disposition-saved'),
  answer: $<HTMLButtonElement>('btn-answer'),
  hangup: $<HTMLButtonElement>('btn-hangup'),
  hold: $<HTMLButtonElement>('btn-hold'),
  mute: $<HTMLButtonElement>('btn-mute'),
  recPause: $<HTMLButtonElement>('btn-rec-pause'),
  keys: Array.from(document.querySelectorAll<HTMLButtonElement>('#dialpad button[data-digit]')),
  dtmfSent: $('dtmf-sent'),
  audio: $<HTMLAudioElement>('remote-audio'),
  awayReason: $<HTMLSelectElement>('away-reason'),
  micWarning: $('mic-warning'),
  queuesBody: $('queues-body'),
  ctxCalled: $('ctx-called'),
  ctxIntent: $('ctx-intent'),
  ctxIvr: $('ctx-ivr'),
  ctxRecent: $('ctx-recent'),
  ctxCallback: $('ctx-callback'),
  recIndicator: $('rec-indicator'),
  wrapup: $('wrapup'),
  wrapupCountdown: $('wrapup-countdown'),
  extend: $<HTMLButtonElement>('btn-extend'),
  notesBox: $('notes-box'),
  notes: $<HTMLTextAreaElement>('notes'),
  notesSaved: $('notes-saved'),
  shiftBody: $('shift-body'),
  shiftEmpty: $('shift-empty'),
  ringVolume: $<HTMLInputElement>('ring-volume'),
  ringTest: $<HTMLButtonElement>('btn-ring-test'),
  notify: $<HTMLInputElement>('notify'),
  announcer: $('announcer'),
  transfer: $<HTMLButtonElement>('btn-transfer'),
  transferPanel: $('transfer-panel'),
  transferTo: $<HTMLInputElement>('transfer-to'),
  transferError: $('transfer-error'),
  transferNow: $<HTMLButtonElement>('btn-transfer-now'),
  consult: $<HTMLButtonElement>('btn-consult'),
  consultStatus: $('consult-status'),
  consultButtons: $('consult-buttons'),
  completeTransfer: $<HTMLButtonElement>('btn-complete-transfer'),
  conference: $<HTMLButtonElement>('btn-conference'),
  cancelConsult: $<HTMLButtonElement>('btn-cancel-consult'),
  partiesBox: $('parties-box'),
  parties: $('parties'),
};

/** The transfer panel is open (only with a connected call). */
let transferOpen = false;

const media = new CallMedia(ui.audio, (message) => showAlert(message));
const ringer = new Ringer();
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const signalling = new Signalling(wsUrl, () => session?.token ?? null, {
  opened: () => {
    connText = 'Signing in…';
    render();
  },
  message: onServerMessage,
  down: (retryInMs) => {
    online = false;
    connText = `Connection lost. Reconnecting in ${Math.round(retryInMs / 1000)} s…`;
    render();
  },
});

// ---------------------------------------------------------------------------------------------
// Labels

const STATE_LABEL: Record<AgentState, string> = {
  offline: 'Offline',
  available: 'Available',
  ringing: 'Ringing',
  'on-call': 'On call',
  'wrap-up': 'Wrap-up',
  away: 'Away',
};

const RING_CANCELLED: Record<Extract<ServerMessage, { type: 'ringCancelled' }>['reason'], string> = {
  'caller-hangup': 'The caller hung up before you answered.',
  'no-answer': 'The call was not answered in time.',
  'taken-elsewhere': 'The call was answered elsewhere.',
};

const CALL_ENDED: Record<Extract<ServerMessage, { type: 'callEnded' }>['cause'], string> = {
  'caller-hangup': 'The caller hung up.',
  'agent-hangup': 'You hung up.',
  'agent-lost': 'The connection to your browser was lost.',
  'media-failed': 'The audio connection failed.',
  requeued: 'Your audio did not connect, so the caller went back to the head of the queue. Check your microphone and network, then choose Available.',
  shutdown: 'The appliance is shutting down.',
  transferred: 'The caller was transferred.',
};

const DISPOSITION_LABEL: Record<Disposition, string> = {
  resolved: 'Resolved',
  'not-resolved': 'Not resolved',
  'follow-up': 'Follow-up',
};

const ERROR_HINT: Partial<Record<ErrorCode, string>> = {
  WS_NOT_ALLOWED: 'That is not possible right now.',
  WS_NO_SUCH_CALL: 'That call no longer exists.',
  WEBRTC_FAILED: 'The audio connection could not be set up.',
  WS_TARGET_UNAVAILABLE: 'Try another target, or Cancel consult.',
  WS_NO_CONSULT: 'There is no consult on this call.',
  WS_CONFERENCE_FULL: 'No more parties can join this call.',
};

const CONSULT_PHASE: Record<ConsultPhase, string> = {
  dialing: 'Calling',
  ringing: 'Ringing',
  connected: 'Talking to',
  failed: 'Could not reach',
  ended: 'The consult with',
};

const PARTY_KIND: Record<PartyInfo['kind'], string> = { caller: 'caller', agent: 'agent', external: 'outside line' };
const PARTY_ROLE: Record<PartyInfo['role'], string> = { party: '', listener: 'listening', coach: 'coaching you', barge: 'joined' };

/** The state the agent is in as far as this page can tell (server state, refined by the call). */
function effectiveState(): AgentState {
  if (call) {
    if (call.phase === 'connected') return 'on-call';
    return serverState === 'on-call' ? 'on-call' : 'ringing';
  }
  return serverState;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function render(): void {
  const loggedIn = session !== null;
  ui.loginView.hidden = loggedIn;
  ui.sessionView.hidden = !loggedIn;
  ui.sessionBar.hidden = !loggedIn;
  if (!loggedIn) {
    document.title = 'Sign in — ccedge agent';
    return;
  }

  ui.who.textContent = session!.agent.displayName
    ? `${session!.agent.displayName} (${session!.agent.name})`
    : session!.agent.name;
  ui.conn.textContent = online ? '' : connText;
  ui.conn.classList.toggle('conn-down', !online);

  const st = effectiveState();
  const label =
    st === 'away' && serverReason ? `Away (${serverReason})` : STATE_LABEL[st];
  setText(ui.state, label);
  ui.state.className = `state state-${st}${online ? '' : ' state-stale'}`;
  document.body.dataset.state = st;

  const idle = !call;
  ui.available.disabled = !online || !idle || micProblem !== null || !['away', 'wrap-up', 'offline'].includes(st);
  ui.micWarning.hidden = micProblem === null;
  setText(ui.micWarning, micProblem === null ? '' : `You cannot go Available: ${micProblem}. Callers would not hear you.`);
  ui.awayReason.disabled = !online || !idle || !['available', 'wrap-up', 'away', 'offline'].includes(st);
  if (ui.awayReason.options.length !== desk.awayReasons.length || desk.awayReasons.some((r, i) => ui.awayReason.options[i]?.value !== r)) {
    ui.awayReason.replaceChildren(...desk.awayReasons.map((r) => new Option(r, r)));
  }
  if (st === 'away' && serverReason && desk.awayReasons.includes(serverReason)) ui.awayReason.value = serverReason;
  ui.away.disabled = !online || !idle || !['available', 'wrap-up', 'offline'].includes(st);
  ui.available.classList.toggle('current', st === 'available');
  ui.away.classList.toggle('current', st === 'away');

  const connected = online && call?.phase === 'connected';
  ui.answer.disabled = !(online && call?.phase === 'ringing');
  // Hang up works from the moment the agent answered, also while the audio is still connecting.
  ui.hangup.disabled = !(online && call !== null && call.phase !== 'ringing');
  ui.hold.disabled = !connected;
  ui.mute.disabled = !connected;
  for (const key of ui.keys) key.disabled = !connected;
  ui.hold.setAttribute('aria-pressed', String(!!call?.held));
  ui.mute.setAttribute('aria-pressed', String(!!call?.muted));
  const recording = connected ? call?.recording ?? null : null;
  ui.recPause.hidden = recording === null;
  ui.recPause.disabled = recording === null;
  ui.recPause.setAttribute('aria-pressed', String(!!recording?.paused));
  setText(ui.recPause, recording?.paused ? 'Resume recording' : 'Pause recording');
  renderTransfer(connected);

  renderDesk(st);

  // Outcome of the last call: offered during wrap-up, until the next call.
  const showDisposition = !call && lastCall !== null && st === 'wrap-up';
  ui.disposition.hidden = !showDisposition;
  if (lastCall) {
    const chosen = lastCall.pending ?? lastCall.disposition;
    for (const b of ui.dispositionButtons) {
      b.disabled = !online || lastCall.pending !== null;
      b.setAttribute('aria-pressed', String(b.dataset.disposition === chosen));
    }
    setText(
      ui.dispositionSaved,
      lastCall.pending ? 'Saving…' : lastCall.disposition ? `Saved: ${DISPOSITION_LABEL[lastCall.disposition]}.` : '',
    );
  }

  ui.callCard.className = `call-card ${call ? `call-${call.phase}` : 'idle'}`;
  ui.callDetails.hidden = !call;
  if (call) {
    const ringingish = call.phase !== 'connected';
    setText(ui.callHeading, ringingish ? 'Incoming call' : call.held ? 'On call (on hold)' : 'On call');
    setText(ui.callNumber, call.info.caller || 'unknown number');
    setText(ui.callName, call.info.callerName || '—');
    setText(ui.callQueue, call.info.queue);
    setText(ui.callTimerLabel, ringingish ? 'Waiting' : 'Talking');
    let note = '';
    if (call.phase === 'answering') note = 'Answering…';
    else if (call.phase === 'connecting') note = 'Connecting audio…';
    else if (call.phase === 'connected') {
      note = [call.held ? 'Caller is on hold.' : '', call.muted ? 'Your microphone is muted.' : '', call.recording?.paused ? 'Recording paused.' : ''].filter(Boolean).join(' ');
    }
    setText(ui.callNote, note);
    document.title = ringingish
      ? `Ringing: ${call.info.callerName ?? call.info.caller} — ccedge agent`
      : `On call — ccedge agent`;
  } else {
    setText(ui.callHeading, 'No call');
    setText(ui.callNote, '');
    document.title = `${label} — ccedge agent`;
  }
  tick();
}

/** The Transfer button and panel: target, blind/consult, the consult's buttons and the parties. */
function renderTransfer(connected: boolean): void {
  if (!connected || !call) transferOpen = false;
  ui.transfer.disabled = !connected;
  ui.transfer.setAttribute('aria-expanded', String(transferOpen));
  ui.transferPanel.hidden = !transferOpen;
  const consult = call?.consult ?? null;
  const pending = call?.transferPending ?? null;
  const busy = consult !== null || pending !== null;
  ui.transferTo.disabled = busy;
  ui.transferNow.disabled = !connected || busy;
  ui.consult.disabled = !connected || busy;
  ui.consultButtons.hidden = consult === null;
  const talking = consult?.phase === 'connected';
  ui.completeTransfer.disabled = !talking || !online;
  ui.conference.disabled = !talking || !online;
  ui.cancelConsult.disabled = consult === null || !online;
  if (pending) setText(ui.consultStatus, pending.mode === 'blind' ? `Transferring to ${pending.target}…` : `Calling ${pending.target}…`);
  else if (consult) setText(ui.consultStatus, `${CONSULT_PHASE[consult.phase]} ${consult.target}${consult.phase === 'connected' ? '. The caller is on hold.' : '…'}`);
  const parties = call?.parties ?? [];
  // Two parties is the plain call; the list matters once a third joins (consult, conference).
  ui.partiesBox.hidden = parties.length < 3;
  const items = parties
    .map((p) => {
      const role = PARTY_ROLE[p.role];
      const extra = [PARTY_KIND[p.kind], role, p.held ? 'on hold' : ''].filter(Boolean).join(', ');
      return `<li data-party="${esc(p.id)}">${esc(p.name)} <span class="muted">(${esc(extra)})</span></li>`;
    })
    .join('');
  if (ui.parties.innerHTML !== items) ui.parties.innerHTML = items;
}

/** A problem with what was typed in Transfer to (empty: none). */
function setTransferError(text: string): void {
  setText(ui.transferError, text);
  ui.transferTo.setAttribute('aria-invalid', String(text !== ''));
}

function requestTransfer(mode: TransferMode): void {
  if (!call || call.phase !== 'connected' || call.transferPending || call.consult) return;
  clearAlert();
  const target = ui.transferTo.value.trim();
  if (parseTransferTarget(target) === null) {
    const text = target === '' ? 'Type where to transfer the call.' : `"${target.slice(0, 40)}" is not a transfer target.`;
    setTransferError(`${text} Transfer to takes ${TRANSFER_TARGET_HELP}.`);
    showAlert(`${text} Transfer to takes ${TRANSFER_TARGET_HELP}.`);
    ui.transferTo.focus();
    return;
  }
  setTransferError('');
  const ref = signalling.send({ type: 'transfer', callId: call.info.callId, target, mode });
  sendOrComplain(ref);
  if (ref === null) return;
  call.transferPending = { ref, target, mode };
  setText(ui.consultStatus, '');
  render();
}

function consultCommand(type: 'completeTransfer' | 'conference' | 'cancelConsult'): void {
  if (!call?.consult) return;
  clearAlert();
  sendOrComplain(signalling.send({ type, callId: call.info.callId }));
}

/** Once a second: wait/talk timers, ring deadline, time in state. */
function tick(): void {
  const now = Date.now();
  if (call) {
    const from = call.phase === 'connected' ? call.connectedAt ?? now : serverTimeToLocal(call.info.queuedAt);
    setText(ui.callTimer, duration(now - from));
    if (call.phase === 'ringing' && call.ringDeadline !== null) {
      const left = Math.max(0, Math.ceil((call.ringDeadline - now) / 1000));
      setText(ui.callNote, `Rings for another ${left} s.`);
    }
  }
  setText(ui.stateSince, stateSince !== null && session && online ? `for ${duration(now - stateSince)}` : '');
  if (wrapUp) setText(ui.wrapupCountdown, `Wrap-up ends in ${duration(Math.max(0, wrapUp.endsAt - now) + 999)}`);
}

/** The full-shift parts of the desk: caller context, recording, wrap-up, notes, queues, history. */
function renderDesk(st: AgentState): void {
  const ctx = call?.info.context;
  setText(ui.ctxCalled, ctx?.called ?? '—');
  setText(ui.ctxIntent, ctx?.intent ? `${ctx.intent}${ctx.intentSource ? ` (by ${ctx.intentSource})` : ''}` : '—');
  setText(ui.ctxIvr, ctx && ctx.ivrPath.length > 0 ? ctx.ivrPath.join(' › ') : '—');
  setText(ui.ctxRecent, ctx ? recentCallsText(ctx.recentCalls) : '—');
  setText(ui.ctxCallback, ctx ? (ctx.callback ? 'Yes: we called them back' : 'No') : '—');

  const inCall = call !== null && call.phase !== 'ringing';
  ui.recIndicator.hidden = !inCall;
  const rec = call?.recording ?? null;
  setText(ui.recIndicator, rec === null ? 'Not recorded' : rec.paused ? 'Recording paused' : 'Recording');
  ui.recIndicator.className = `rec-indicator${rec === null ? '' : rec.paused ? ' rec-paused' : ' rec-on'}`;

  const wrapping = st === 'wrap-up' && wrapUp !== null && !call;
  ui.wrapup.hidden = !wrapping;
  ui.extend.disabled = !online || !wrapping;

  // Notes: for the call in progress, then for the call just finished (wrap-up and after).
  const notesFor = call && call.phase !== 'ringing' ? call.info.callId : lastCall?.callId ?? null;
  if (notesFor && notes?.callId !== notesFor) {
    flushNotes();
    notes = { callId: notesFor, saved: '', timer: undefined };
    ui.notes.value = '';
    setText(ui.notesSaved, '');
  }
  ui.notesBox.hidden = notesFor === null;

  const rows = queueFigures.map((q) => `<tr><td>${esc(q.name)}</td><td class="num">${q.waiting}</td><td class="num">${duration(q.longestWaitS * 1000)}</td></tr>`).join('');
  if (ui.queuesBody.innerHTML !== rows) ui.queuesBody.innerHTML = rows;
  const shiftRows = history
    .map((c) => {
      const t = new Date(serverTimeToLocal(c.at)).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      const who = c.callerName ? `${c.callerName} (${c.caller})` : c.caller;
      const dur = c.durationS === null ? 'on call' : duration(c.durationS * 1000);
      return `<tr><td>${esc(t)}</td><td>${esc(who)}</td><td>${esc(c.queue)}</td><td class="num">${dur}</td><td>${c.disposition ? DISPOSITION_LABEL[c.disposition] : '—'}</td></tr>`;
    })
    .join('');
  if (ui.shiftBody.innerHTML !== shiftRows) ui.shiftBody.innerHTML = shiftRows;
  ui.shiftEmpty.hidden = history.length > 0;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The CRM screen pop for a call: the template's {fields}, URL-encoded. */
function screenPopUrl(info: CallInfo): string | null {
  const template = desk.screenPopUrl;
  if (!template) return null;
  const fields: Record<string, string> = {
    caller: info.caller,
    callerName: info.callerName ?? '',
    called: info.context?.called ?? '',
    queue: info.queue,
    intent: info.context?.intent ?? '',
    callId: info.callId,
  };
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in fields ? encodeURIComponent(fields[k]) : m));
}

/** Sends the notes now if they changed (on blur, before switching calls, on a typing pause). */
function flushNotes(): void {
  if (!notes) return;
  window.clearTimeout(notes.timer);
  notes.timer = undefined;
  const text = ui.notes.value;
  if (text === notes.saved) return;
  const ref = signalling.send({ type: 'notes', callId: notes.callId, text });
  if (ref !== null) {
    notes.saved = text;
    setText(ui.notesSaved, 'Saving…');
  } else setText(ui.notesSaved, 'Not saved: not connected. Keep this page open.');
}

/**
 * Can this page talk? No mediaDevices (not a secure context), no audio input, or a refused
 * permission: the server is told, and Available stays off with the reason on the page.
 */
async function checkMicrophone(ask: boolean): Promise<boolean> {
  let problem: string | null = null;
  if (!CallMedia.micSupported()) {
    problem = 'this page is not a secure context (open it over https://), so the browser gives it no microphone';
  } else {
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      if (!devices.some((d) => d.kind === 'audioinput')) problem = 'no microphone is connected to this computer';
      else if (ask) {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        stream.getTracks().forEach((t) => t.stop());
      }
    } catch (err) {
      problem = `the microphone is not available (${errorText(err)})`;
    }
  }
  const changed = problem !== micProblem;
  micProblem = problem;
  if (changed || ask) signalling.send({ type: 'devices', microphone: problem === null, ...(problem ? { detail: problem.slice(0, 200) } : {}) });
  render();
  return problem === null;
}

function notifyRinging(info: CallInfo): void {
  if (!ui.notify.checked || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  try {
    const n = new Notification('Incoming call', { body: `${info.callerName ? `${info.callerName}, ` : ''}${info.caller} — queue ${info.queue}`, tag: info.callId });
    n.onclick = () => window.focus();
  } catch {
    // Notifications are a convenience; the ring and the page show the call anyway.
  }
}

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function serverTimeToLocal(iso: string): number {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t - clockOffsetMs : Date.now();
}

function showAlert(message: string): void {
  ui.alert.textContent = message;
  ui.alertDismiss.hidden = !message;
}

function clearAlert(): void {
  showAlert('');
}

function announce(text: string): void {
  // Clear first so the same text twice is announced twice.
  ui.announcer.textContent = '';
  window.setTimeout(() => (ui.announcer.textContent = text), 50);
}

// ---------------------------------------------------------------------------------------------
// Session

function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    return typeof s?.token === 'string' && typeof s.agent?.name === 'string' ? s : null;
  } catch {
    return null;
  }
}

async function login(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const body: LoginRequest = { agent: ui.loginAgent.value.trim(), password: ui.loginPassword.value };
  if (!body.agent || !body.password) {
    showAlert('Enter your agent name and password.');
    (body.agent ? ui.loginPassword : ui.loginAgent).focus();
    return;
  }
  if (!ui.newPasswordFields.hidden) {
    // First login with a one-time password: the new one is typed twice, checked here and by the box.
    if (ui.loginNewPassword.value.length < 8) {
      showAlert('Choose a new password of at least 8 characters.');
      ui.loginNewPassword.focus();
      return;
    }
    if (ui.loginNewPassword.value !== ui.loginNewPassword2.value) {
      showAlert('The two new passwords differ. Type the same password twice.');
      ui.loginNewPassword2.value = '';
      ui.loginNewPassword2.focus();
      return;
    }
    body.newPassword = ui.loginNewPassword.value;
  }
  ui.loginSubmit.disabled = true;
  try {
    const r = await postLogin('/agent/login', body);
    if (r.kind === 'unreachable') {
      showAlert('Cannot reach the appliance. Check the network and try again.');
      return;
    }
    if (r.kind === 'refused') {
      const err = r.error;
      if (err?.code === 'AGENT_PASSWORD_CHANGE_REQUIRED' || err?.code === 'AGENT_PASSWORD_REJECTED') {
        // Keep the one-time password in its field: the next submit sends it with the new one.
        ui.newPasswordFields.hidden = false;
        ui.loginSubmit.textContent = 'Set password and log in';
        showAlert(err.code === 'AGENT_PASSWORD_CHANGE_REQUIRED' ? 'This is a one-time password. Choose your own password to continue.' : `New password refused: ${err.message}.`);
        ui.loginNewPassword.value = '';
        ui.loginNewPassword2.value = '';
        ui.loginNewPassword.focus();
        return;
      }
      if (r.status === 401 || err?.code === 'AGENT_LOGIN_FAILED') {
        showAlert('Login failed: wrong agent name or password.');
      } else {
        showAlert(`Login failed: ${err?.message ?? `the appliance answered ${r.status}`}.`);
      }
      ui.loginPassword.value = '';
      ui.loginPassword.focus();
      return;
    }
    clockOffsetMs = r.clockOffsetMs;
    sessionStorage.setItem(OFFSET_KEY, String(clockOffsetMs));
    const data = r;
    session = { token: data.token, agent: data.agent };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    ui.loginPassword.value = '';
    ui.loginNewPassword.value = '';
    ui.loginNewPassword2.value = '';
    ui.newPasswordFields.hidden = true;
    ui.loginSubmit.textContent = 'Log in';
    clearAlert();
    startSession();
    ui.available.focus();
  } finally {
    ui.loginSubmit.disabled = false;
  }
}

function loadLastCall(): LastCall | null {
  try {
    const v = JSON.parse(sessionStorage.getItem(LAST_CALL_KEY) ?? 'null') as LastCall | null;
    return v && typeof v.callId === 'string' ? { callId: v.callId, disposition: v.disposition ?? null, pending: null, ref: null } : null;
  } catch {
    return null;
  }
}

function setLastCall(v: LastCall | null): void {
  lastCall = v;
  if (v) sessionStorage.setItem(LAST_CALL_KEY, JSON.stringify({ callId: v.callId, disposition: v.disposition }));
  else sessionStorage.removeItem(LAST_CALL_KEY);
}

function startSession(): void {
  serverState = 'offline';
  serverReason = null;
  stateSince = null;
  online = false;
  connText = 'Connecting…';
  setText(ui.lastCall, '');
  render();
  signalling.start();
}

/** Back to the login form; `message` is shown as an alert. */
function endSession(message: string | null, sendLogout: boolean): void {
  flushNotes();
  if (sendLogout) signalling.send({ type: 'logout' });
  notes = null;
  history = [];
  queueFigures = [];
  wrapUp = null;
  signalling.stop();
  dropCall();
  session = null;
  setLastCall(null);
  online = false;
  serverState = 'offline';
  serverReason = null;
  stateSince = null;
  sessionStorage.removeItem(STORAGE_KEY);
  if (message) showAlert(message);
  else clearAlert();
  render();
  ui.loginAgent.focus();
}

// ---------------------------------------------------------------------------------------------
// Calls

function dropCall(): void {
  ringer.stop();
  media.close();
  call = null;
  transferOpen = false;
  setTransferError('');
  setText(ui.consultStatus, '');
  setText(ui.dtmfSent, '');
}

/** Appends one utterance (text via textContent only: it is what a caller said, never markup). */
function addTranscriptLine(msg: Extract<ServerMessage, { type: 'transcript' }>): void {
  if (transcript?.callId !== msg.callId) {
    transcript = { callId: msg.callId, quality: msg.quality, lines: 0 };
    ui.transcriptLines.replaceChildren();
  }
  transcript.quality = msg.quality ?? transcript.quality;
  setText(ui.transcriptQuality, transcript.quality ? `Automatic transcript, ${transcript.quality}` : 'Automatic transcript');
  const li = document.createElement('li');
  li.className = `speaker-${msg.speaker}`;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = msg.speaker === 'caller' ? 'Caller' : 'You';
  const text = document.createElement('span');
  text.className = msg.sentiment < 0 ? 'text neg' : msg.sentiment > 0 ? 'text pos' : 'text';
  text.textContent = msg.text;
  li.append(who, text);
  ui.transcriptLines.append(li);
  transcript.lines++;
  while (ui.transcriptLines.childElementCount > TRANSCRIPT_MAX_LINES) ui.transcriptLines.firstElementChild?.remove();
  ui.transcriptPanel.hidden = false;
  ui.transcriptLines.scrollTop = ui.transcriptLines.scrollHeight;
}

function newCall(info: CallInfo, phase: Phase, timeoutS: number | null): Call {
  if (transcript && transcript.callId !== info.callId) {
    transcript = null;
    ui.transcriptLines.replaceChildren();
    ui.transcriptPanel.hidden = true;
  }
  return {
    info,
    phase,
    ringDeadline: timeoutS !== null ? Date.now() + timeoutS * 1000 : null,
    connectedAt: phase === 'connected' ? Date.now() : null,
    held: false,
    muted: false,
    recording: null,
    answerRef: null,
    consult: null,
    transferPending: null,
    parties: [],
  };
}

function ringingStarted(c: Call): void {
  ringer.start();
  const who = c.info.callerName ? `${c.info.callerName}, ${c.info.caller}` : c.info.caller;
  announce(`Incoming call from ${who}, queue ${c.info.queue}.`);
  notifyRinging(c.info);
}

async function handleOffer(callId: string, sdp: string): Promise<void> {
  if (!call || call.info.callId !== callId) return; // stale offer for a call we no longer have
  ringer.stop();
  if (call.phase !== 'connected') call.phase = 'connecting';
  render();
  try {
    const answerSdp = await media.answer(sdp);
    if (!call || call.info.callId !== callId) return;
    media.setMuted(call.muted);
    signalling.send({ type: 'webrtcAnswer', callId, sdp: answerSdp });
  } catch (err) {
    if (err instanceof MediaCancelled) return;
    showAlert(`Could not set up the audio: ${errorText(err)}.`);
  }
}

// ---------------------------------------------------------------------------------------------
// Server messages

function onServerMessage(msg: PageMessage): void {
  switch (msg.type) {
    case 'welcome': {
      signalling.markWelcomed();
      online = true;
      if (lastCall) {
        // An unanswered disposition from before the reconnect may be sent again.
        lastCall.pending = null;
        lastCall.ref = null;
      }
      connText = '';
      if (session) {
        session.agent = msg.agent;
        sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
      }
      if (serverState !== msg.state) stateSince = Date.now();
      serverState = msg.state;
      serverReason = msg.reason;
      if (msg.desk) desk = msg.desk;
      wrapUp = msg.wrapUp ? { callId: msg.wrapUp.callId, endsAt: serverTimeToLocal(msg.wrapUp.endsAt) } : null;
      void checkMicrophone(false);
      const c = msg.call;
      if (!c) {
        if (call) dropCall();
      } else if (call && call.info.callId === c.callId) {
        // Resumed: keep the peer connection (audio does not go through the WebSocket).
        call.info = { callId: c.callId, caller: c.caller, callerName: c.callerName, queue: c.queue, queuedAt: c.queuedAt };
        if (c.phase === 'connected' && call.phase !== 'connected') {
          call.phase = 'connected';
          call.connectedAt ??= Date.now();
        } else if (c.phase === 'ringing' && call.phase === 'answering') {
          call.phase = 'ringing'; // our answer may not have arrived: let the agent press Answer again
          call.answerRef = null;
        }
      } else {
        if (call) dropCall();
        call = newCall(c, c.phase === 'connected' ? 'connected' : 'ringing', null);
        if (c.phase === 'ringing') ringingStarted(call);
      }
      break;
    }
    case 'state':
      serverState = msg.state;
      serverReason = msg.reason;
      if (msg.state !== 'wrap-up') wrapUp = null;
      stateSince = Number.isFinite(Date.parse(msg.since)) ? serverTimeToLocal(msg.since) : Date.now();
      if (call && (msg.state === 'available' || msg.state === 'away' || msg.state === 'offline')) dropCall();
      break;
    case 'ringing':
      if (call && call.info.callId !== msg.call.callId) dropCall();
      if (!call) {
        call = newCall(msg.call, 'ringing', msg.timeoutS);
        setText(ui.lastCall, '');
        ringingStarted(call);
      }
      break;
    case 'ringCancelled':
      if (call && call.info.callId === msg.callId) {
        dropCall();
        setText(ui.lastCall, RING_CANCELLED[msg.reason] ?? 'The call stopped ringing.');
        announce(RING_CANCELLED[msg.reason] ?? 'The call stopped ringing.');
      }
      break;
    case 'webrtcOffer':
      void handleOffer(msg.callId, msg.sdp);
      break;
    case 'callConnected':
      if (call && call.info.callId === msg.callId) {
        const focusHangup = document.activeElement === ui.answer || document.activeElement === document.body;
        call.phase = 'connected';
        call.connectedAt = Date.now();
        call.answerRef = null;
        setLastCall(null);
        ringer.stop();
        render();
        if (focusHangup) ui.hangup.focus();
      }
      break;
    case 'held':
      if (call && call.info.callId === msg.callId) call.held = msg.on;
      break;
    case 'recording':
      if (call && call.info.callId === msg.callId) call.recording = msg.active ? { paused: msg.paused } : null;
      break;
    case 'transcript':
      if (call && call.info.callId === msg.callId) addTranscriptLine(msg);
      break;
    case 'muted':
      if (call && call.info.callId === msg.callId) {
        call.muted = msg.on;
        media.setMuted(msg.on);
      }
      break;
    case 'callEnded': {
      const text = CALL_ENDED[msg.cause] ?? 'The call ended.';
      if (!call || call.info.callId === msg.callId) {
        dropCall();
        // A re-queued call was not handled here: no outcome or notes to give for it.
        if (msg.cause !== 'requeued' && lastCall?.callId !== msg.callId) setLastCall({ callId: msg.callId, disposition: null, pending: null, ref: null });
        setText(ui.lastCall, `Call ended: ${text}`);
        announce(`Call ended. ${text}`);
      }
      break;
    }
    case 'wrapUp':
      wrapUp = { callId: msg.callId, endsAt: serverTimeToLocal(msg.endsAt) };
      tick();
      break;
    case 'callContext':
      if (call && call.info.callId === msg.callId) call.info = { ...call.info, context: msg.context };
      break;
    case 'queues':
      queueFigures = msg.queues;
      break;
    case 'history':
      history = msg.calls;
      break;
    case 'notesSaved':
      if (notes?.callId === msg.callId) setText(ui.notesSaved, `Notes saved at ${new Date(serverTimeToLocal(msg.at)).toLocaleTimeString()}.`);
      break;
    case 'dispositionSaved':
      if (lastCall && lastCall.callId === msg.callId) {
        setLastCall({ callId: msg.callId, disposition: msg.disposition, pending: null, ref: null });
        announce(`Outcome saved: ${DISPOSITION_LABEL[msg.disposition]}.`);
      }
      break;
    case 'consult':
      if (call && call.info.callId === msg.callId) {
        call.transferPending = null;
        if (msg.phase === 'failed' || msg.phase === 'ended') {
          call.consult = null;
          const text = `${CONSULT_PHASE[msg.phase]} ${msg.target}${msg.phase === 'ended' ? ' ended' : ''}${msg.reason ? `: ${msg.reason}` : ''}.`;
          setText(ui.consultStatus, text);
          announce(text);
        } else {
          call.consult = { target: msg.target, phase: msg.phase };
          transferOpen = true;
          if (msg.phase === 'connected') announce(`Talking to ${msg.target}. The caller is on hold.`);
        }
      }
      break;
    case 'parties':
      if (call && call.info.callId === msg.callId) call.parties = msg.parties;
      break;
    case 'error':
      onServerError(msg);
      break;
    case 'pong':
      break;
    default:
      break;
  }
  render();
}

function onServerError(msg: Extract<ServerMessage, { type: 'error' }>): void {
  if (msg.code === 'WS_SESSION_INVALID' || (msg.code === 'WS_NOT_AUTHENTICATED' && !online)) {
    endSession('Your session has ended. Please log in again.', false);
    return;
  }
  if (msg.code === 'WS_UNSUPPORTED_VERSION') {
    signalling.stop();
    online = false;
    connText = 'This page is out of date.';
    showAlert('This page is out of date for the appliance. Reload the page (Ctrl+Shift+R).');
    return;
  }
  if (lastCall && msg.ref && msg.ref === lastCall.ref) {
    lastCall.pending = null;
    lastCall.ref = null;
  }
  if (call && msg.ref && msg.ref === call.answerRef) {
    call.phase = 'ringing';
    call.answerRef = null;
    media.close();
  }
  if (call?.transferPending && msg.ref === call.transferPending.ref) {
    call.transferPending = null;
    setText(ui.consultStatus, '');
    setTransferError(msg.message);
  }
  if (msg.code === 'WS_NO_MICROPHONE') void checkMicrophone(false);
  const hint = ERROR_HINT[msg.code];
  showAlert(msg.message ? `${msg.message}${hint && !msg.message.includes(hint) ? ` ${hint}` : ''}` : hint ?? msg.code);
}

// ---------------------------------------------------------------------------------------------
// Controls

function sendOrComplain(ref: string | null): void {
  if (ref === null) showAlert('Not connected to the appliance. Reconnecting…');
}

ui.loginForm.addEventListener('submit', (ev) => void login(ev));
ui.logout.addEventListener('click', () => endSession(null, true));
ui.alertDismiss.addEventListener('click', clearAlert);

ui.available.addEventListener('click', () => {
  clearAlert();
  // In the click (a user gesture): the permission prompt shows now, and a page that cannot
  // talk never tells the server it is ready.
  void checkMicrophone(true).then((ok) => {
    if (ok) sendOrComplain(signalling.send({ type: 'setState', state: 'available' }));
  });
});
ui.away.addEventListener('click', () => {
  clearAlert();
  sendOrComplain(signalling.send({ type: 'setState', state: 'away', reason: ui.awayReason.value || desk.awayReasons[0] }));
});
ui.awayReason.addEventListener('change', () => {
  // Choosing a reason sets the agent away at once (or changes the reason while away).
  clearAlert();
  sendOrComplain(signalling.send({ type: 'setState', state: 'away', reason: ui.awayReason.value }));
});
ui.extend.addEventListener('click', () => {
  clearAlert();
  sendOrComplain(signalling.send({ type: 'extendWrapUp' }));
});
ui.notes.addEventListener('input', () => {
  if (!notes) return;
  window.clearTimeout(notes.timer);
  setText(ui.notesSaved, '');
  notes.timer = window.setTimeout(flushNotes, 1000);
});
ui.notes.addEventListener('blur', flushNotes);
const VOLUME_KEY = 'ccedge.agent.ringVolume';
ui.ringVolume.value = localStorage.getItem(VOLUME_KEY) ?? ui.ringVolume.value;
ringer.volume = Number(ui.ringVolume.value) / 100;
ui.ringVolume.addEventListener('input', () => {
  ringer.volume = Number(ui.ringVolume.value) / 100;
  localStorage.setItem(VOLUME_KEY, ui.ringVolume.value);
});
ui.ringTest.addEventListener('click', () => ringer.test());
ui.notify.checked = typeof Notification !== 'undefined' && Notification.permission === 'granted' && localStorage.getItem('ccedge.agent.notify') !== 'off';
ui.notify.addEventListener('change', () => {
  localStorage.setItem('ccedge.agent.notify', ui.notify.checked ? 'on' : 'off');
  if (ui.notify.checked && typeof Notification !== 'undefined' && Notification.permission === 'default') {
    void Notification.requestPermission().then((p) => {
      ui.notify.checked = p === 'granted';
    });
  }
});
document.addEventListener('keydown', (ev) => {
  if (!ev.altKey || ev.ctrlKey || ev.metaKey || !session) return;
  const target: Record<string, HTMLButtonElement> = { a: ui.answer, h: ui.hangup, l: ui.hold, m: ui.mute };
  const button = target[ev.key.toLowerCase()];
  if (!button) return;
  ev.preventDefault();
  if (!button.disabled) button.click();
});
ui.answer.addEventListener('click', () => {
  if (!call || call.phase !== 'ringing') return;
  clearAlert();
  const pop = screenPopUrl(call.info);
  media.prepareMic(); // in the click (user gesture): permission prompt now, not when the offer comes
  const ref = signalling.send({ type: 'answer', callId: call.info.callId });
  sendOrComplain(ref);
  if (ref === null) return;
  call.phase = 'answering';
  call.answerRef = ref;
  ringer.stop();
  render();
  // The screen pop opens in the click (a user gesture, so no popup blocker), after the microphone
  // was asked for while this page is in front; the agent's browser goes to the CRM, the
  // appliance sends nothing anywhere.
  if (pop) window.open(pop, '_blank', 'noopener');
});
ui.hangup.addEventListener('click', () => {
  if (!call) return;
  sendOrComplain(signalling.send({ type: 'hangup', callId: call.info.callId }));
});
ui.hold.addEventListener('click', () => {
  if (!call) return;
  sendOrComplain(signalling.send({ type: 'hold', callId: call.info.callId, on: !call.held }));
});
ui.mute.addEventListener('click', () => {
  if (!call) return;
  const on = !call.muted;
  // Silence the microphone at once; the server's `muted` reply sets the button state.
  if (on) media.setMuted(true);
  const ref = signalling.send({ type: 'mute', callId: call.info.callId, on });
  sendOrComplain(ref);
  if (ref === null) media.setMuted(call.muted);
});
ui.recPause.addEventListener('click', () => {
  if (!call?.recording) return;
  sendOrComplain(signalling.send({ type: 'recordingPause', callId: call.info.callId, on: !call.recording.paused, reason: 'card details' }));
});
ui.transfer.addEventListener('click', () => {
  if (!call || call.phase !== 'connected') return;
  transferOpen = !transferOpen;
  render();
  if (transferOpen) ui.transferTo.focus();
});
ui.transferTo.addEventListener('input', () => {
  if (ui.transferError.textContent) setTransferError('');
});
ui.transferNow.addEventListener('click', () => requestTransfer('blind'));
ui.consult.addEventListener('click', () => requestTransfer('consult'));
ui.completeTransfer.addEventListener('click', () => consultCommand('completeTransfer'));
ui.conference.addEventListener('click', () => consultCommand('conference'));
ui.cancelConsult.addEventListener('click', () => consultCommand('cancelConsult'));
for (const button of ui.dispositionButtons) {
  button.addEventListener('click', () => {
    const disposition = button.dataset.disposition as Disposition | undefined;
    if (!lastCall || !disposition || lastCall.pending) return;
    clearAlert();
    const ref = signalling.send({ type: 'disposition', callId: lastCall.callId, disposition });
    sendOrComplain(ref);
    if (ref === null) return;
    lastCall.pending = disposition;
    lastCall.ref = ref;
    render();
  });
}
for (const key of ui.keys) {
  key.addEventListener('click', () => {
    const digit = key.dataset.digit;
    if (!call || !digit) return;
    const ref = signalling.send({ type: 'dtmf', callId: call.info.callId, digits: digit });
    sendOrComplain(ref);
    if (ref !== null) setText(ui.dtmfSent, `${ui.dtmfSent.textContent ?? ''}${digit}`.slice(-24));
  });
}

// ---------------------------------------------------------------------------------------------
// Test hooks (read-only) and start-up

declare global {
  interface Window {
    ccedge: { readonly pc: () => RTCPeerConnection | null; readonly state: () => string };
  }
}

Object.defineProperty(window, 'ccedge', {
  value: Object.freeze({ pc: () => media.pc, state: () => effectiveState() }),
  writable: false,
  configurable: false,
  enumerable: true,
});

ui.insecureWarning.hidden = window.isSecureContext;
if (!window.isSecureContext) void showHttpsAddress();

/** Not a secure context: the box tells where its HTTPS page is (the link then shows that address). */
async function showHttpsAddress(): Promise<void> {
  try {
    const res = await fetch('/agent/tls.json', { cache: 'no-store' });
    const info = (await res.json()) as { httpsUrl?: string | null };
    const link = document.getElementById('https-link') as HTMLAnchorElement | null;
    if (!link) return;
    if (typeof info.httpsUrl === 'string' && info.httpsUrl.startsWith('https://')) {
      link.href = info.httpsUrl;
      link.textContent = info.httpsUrl;
    } else link.textContent = 'the https:// address (HTTPS is turned off on this box: ask your administrator)';
  } catch {
    // The static text still points at /trust.
  }
}
window.setInterval(tick, 1000);
window.addEventListener('beforeunload', () => media.close());

session = loadSession();
if (session) startSession();
else render();
