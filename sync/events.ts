/**
 * The catalogue of cloud events: every event type the appliance writes to the outbox, declared
 * once with, per field, how it may leave the site (its residency kind) and the TypeScript type of
 * its value. The residency policy's built-in allow-lists (DEFAULT_EVENT_FIELDS) and the payload
 * type each `append` is checked against are both derived from it, so they cannot disagree and a
 * misspelled type or field is a compile error at every call site.
 *
 * Field kinds (see policy.ts for what each does on the way out):
 * - `plain`, `number`, `text`: listed in the policy's allow-list with that kind;
 * - `local`: part of the payload (kept in the call's own event record on site) but never in the
 *   allow-list, so it does not leave unless a site adds it with `sync.policy.events`.
 *
 * Payload fields are optional unless marked `req` (the same event is written from several places
 * with different subsets, and the policy drops absent fields anyway); a call's id is filled in by
 * the call store, so it is never required of call.* writers. The compiler checks that no call
 * site writes a type or a field the catalogue does not know, a value of the wrong type, or leaves
 * out a required field. Fields arriving through a spread (`...x`) are checked for their value
 * types only, and a value typed `Record<string, unknown>` is not checked at all: give helpers
 * that build payloads a catalogue type (CloudEventData<'…'>).
 */
export type FieldKind = 'plain' | 'number' | 'text';

export type EventFieldKind = FieldKind | 'local';

/** A primitive that may leave as it is (policy `plain`). */
export type PlainValue = string | number | boolean | null;

/** One field: its kind at runtime; its value type as a phantom (never set); whether every writer must set it. */
export interface EventField<K extends EventFieldKind, V, R extends boolean = false> {
  readonly kind: K;
  readonly value?: V;
  readonly required?: R;
}

const plain = <V extends PlainValue | readonly PlainValue[] = PlainValue>(): EventField<'plain', V> => ({ kind: 'plain' });
/** A caller/called number or SIP URI. */
const number = (): EventField<'number', string | number | null> => ({ kind: 'number' });
/** Free text typed or said by people. */
const text = (): EventField<'text', string | null> => ({ kind: 'text' });
const local = <V = PlainValue>(): EventField<'local', V> => ({ kind: 'local' });
/** A field every writer of the event sets (the event means nothing without it). */
const req = <K extends EventFieldKind, V>(f: EventField<K, V>): EventField<K, V, true> => ({ kind: f.kind, required: true });

type Fields = Readonly<Record<string, EventField<EventFieldKind, unknown, boolean>>>;

// Shared by many call events; spread, so each type still lists its full shape.
const CALL = { callId: plain<string>() };
const AGENT_ON_CALL = { ...CALL, agent: plain<string | null>(), queue: plain<string | null>() };
/** The call's id where the whole event stays on site (its type alone leaves, as the envelope). */
const CALL_ON_SITE = { callId: local<string>() };

export const CLOUD_EVENTS = {
  // Caller identity (issue 14): the asserted identity and the original called number are numbers
  // like from/to; callerSource (pai|rpid|from) and privacy (RFC 3323 values) are not.
  'call.offered': {
    ...CALL,
    trunk: plain<string>(),
    direction: plain<string>(),
    from: number(),
    to: number(),
    fromName: text(),
    asserted: number(),
    originalCalled: number(),
    callerSource: plain<string>(),
    privacy: plain<string>(),
    delayedOffer: plain<boolean>(),
  },
  'call.media-answered': { ...CALL, codec: plain<string>() },
  'call.sdp-answer-failed': { ...CALL, reason: plain<string>() },
  'call.refer-refused': { ...CALL, reason: plain<string>() },
  'call.refer-accepted': { ...CALL, number: number() },
  'call.refer-dialing': { ...CALL, trunk: plain<string>(), number: number(), sipCallId: local<string>(), remote: local<string>() },
  'call.referred': { ...CALL, number: number(), sipCallId: local<string>() },
  'call.refer-failed': { ...CALL, status: plain<number | null>(), reason: plain<string | null>() },
  'call.rejected': { ...CALL, trunk: plain<string>(), status: plain<number>(), cause: plain<string>(), from: number(), to: number() },
  'call.answered': { ...CALL },
  'call.confirmed': { ...CALL },
  'call.held': { ...CALL, direction: plain<string>() },
  'call.resumed': { ...CALL },
  'call.dtmf': { ...CALL, durationMs: plain<number>(), digit: req(text()) },
  // A speech IVR's recognised `text` is deliberately absent: the caller's words never leave the site.
  'call.queued': {
    ...CALL,
    queue: plain<string>(),
    intent: plain(),
    source: plain<string>(),
    rule: plain<string | null>(),
    priority: plain<number>(),
    vip: plain<boolean>(),
    confidence: plain<number>(),
    how: plain<string>(),
    text: local<string>(),
  },
  'call.queue-full': { ...CALL, queue: req(plain<string>()) },
  'call.overflow': { ...CALL, from: plain<string>(), to: plain<string | null>(), reason: plain<string>() },
  'call.agent-offered': { ...AGENT_ON_CALL },
  'call.agent-no-answer': { ...AGENT_ON_CALL },
  'call.agent-answered': { ...AGENT_ON_CALL, consult: local<boolean>() },
  'call.agent-connected': { ...AGENT_ON_CALL },
  /** The agent's audio never connected; the caller went back to the head of the queue. */
  'call.agent-media-failed': { ...AGENT_ON_CALL, reason: plain<string>() },
  'call.agent-hold': { ...CALL },
  'call.agent-unhold': { ...CALL },
  'call.agent-mute': { ...CALL },
  'call.agent-unmute': { ...CALL },
  'call.callback-requested': { ...CALL, callbackId: plain<string>(), reason: plain<string>() },
  'call.callback-dialing': { ...CALL, callbackId: plain<string>(), attempt: plain<number>(), number: number() },
  'call.callback-failed': { ...CALL, callbackId: plain<string>(), status: plain<number | null>() },
  'call.forward-dialing': { ...CALL, trunk: plain<string>(), rule: plain<string | null>(), number: number(), sipCallId: local<string>(), remote: local<string>(), rtpLocalPort: local<number>() },
  'call.forward-connected': { ...CALL, sipCallId: local<string>() },
  'call.forward-failed': { ...CALL, status: plain<number | null>(), reason: plain<string | null>() },
  'call.note': { ...CALL, agent: req(plain<string>()), note: req(text()) },
  // Legs and blind transfers (issue 16): who was on the call when; `name` is an agent's name,
  // `number` an extension, outside number or a callback's customer.
  'call.leg-added': { ...CALL, legId: req(plain<string>()), kind: req(plain<string>()), name: plain<string>(), number: number() },
  'call.leg-joined': { ...CALL, legId: req(plain<string>()), kind: req(plain<string>()), name: plain<string>(), number: number() },
  'call.leg-removed': { ...CALL, legId: req(plain<string>()), kind: req(plain<string>()), name: plain<string>(), reason: plain<string>() },
  'call.transferred': { ...CALL, mode: req(plain<string>()), from: req(plain<string>()), to: plain<string>(), queue: plain<string>(), agent: plain<string>(), number: number(), via: plain<string>() },
  'call.transfer-refer': { ...CALL, mode: req(plain<string>()), from: req(plain<string>()), number: number() },
  'call.transfer-dialing': { ...CALL, mode: req(plain<string>()), from: req(plain<string>()), trunk: plain<string>(), number: number(), sipCallId: local<string>() },
  'call.transfer-failed': { ...CALL, mode: req(plain<string>()), from: req(plain<string>()), number: number(), status: plain<number | null>(), reason: plain<string | null>() },
  'call.ended': {
    ...CALL,
    cause: plain<string>(),
    sipStatus: plain<number | null>(),
    queue: plain<string | null>(),
    agent: plain<string | null>(),
    durationS: plain<number>(),
    packetsSent: plain<number>(),
    packetsReceived: plain<number>(),
    bridgedToAgent: plain<number>(),
    bridgedToCaller: plain<number>(),
    forwardPacketsSent: local<number>(),
    forwardPacketsReceived: local<number>(),
  },
  // Events with no allow-list: they leave as the envelope only (the call's own record keeps the data).
  'call.monitor-started': { ...CALL_ON_SITE, supervisor: local<string>(), mode: local<string>() },
  'call.monitor-ended': { ...CALL_ON_SITE, supervisor: local<string>(), reason: local<string>() },
  'call.consult-started': { ...CALL_ON_SITE, agent: local<string>(), target: local<string>() },
  'call.consult-dialing': { ...CALL_ON_SITE, trunk: local<string>(), number: local<string>(), sipCallId: local<string>() },
  'call.consult-connected': { ...CALL_ON_SITE, agent: local<string | null>(), target: local<string>(), legId: local<string | null>() },
  'call.consult-failed': { ...CALL_ON_SITE, agent: local<string>(), target: local<string>(), reason: local<string>() },
  'call.consult-ended': { ...CALL_ON_SITE, agent: local<string>(), target: local<string>(), reason: local<string>() },
  'call.consult-cancelled': { ...CALL_ON_SITE, agent: local<string>(), target: local<string>() },
  'call.conference': { ...CALL_ON_SITE, agent: local<string>(), target: local<string>() },
  'call.conference-left': { ...CALL_ON_SITE, agent: local<string>() },
  'call.ivr-started': { ...CALL_ON_SITE, menu: local<string>() },
  'call.ivr-speech': {
    ...CALL_ON_SITE,
    menu: local<string>(),
    turn: local<number>(),
    result: local<string>(),
    text: local<string>(),
    intent: local<string>(),
    confidence: local<number>(),
    how: local<string>(),
    code: local<string>(),
  },
  'call.ivr-done': {
    ...CALL_ON_SITE,
    result: local<string>(),
    intent: local<string>(),
    path: local<readonly string[]>(),
    menu: local<string>(),
    fallback: local<boolean>(),
    source: local<string>(),
    text: local<string>(),
    confidence: local<number>(),
    how: local<string>(),
    turns: local<number>(),
    reason: local<string>(),
  },
  'speech.fork-started': { ...CALL_ON_SITE, endpoint: local<string>(), session: local<string>(), channels: local<string>() },
  'speech.fork-ended': {
    ...CALL_ON_SITE,
    endpoint: local<string>(),
    reason: local<string>(),
    framesSent: local<number>(),
    framesDropped: local<number>(),
    samplesDropped: local<number>(),
    badMessages: local<number>(),
    utterances: local<number>(),
  },
  'recording.started': { ...CALL_ON_SITE, recordingId: local<string>() },
  'recording.paused': { ...CALL_ON_SITE, recordingId: local<string>(), actor: local<string>(), reason: local<string>() },
  'recording.resumed': { ...CALL_ON_SITE, recordingId: local<string>(), actor: local<string>() },
  // Reasons are the configured agentDesk.awayReasons or the system's own (login, no-answer,
  // disconnected, media-failed, no-microphone, logout, …): the desk refuses any other, so they are
  // labels, not free text, and cloud reports can count time per away reason.
  'agent.state': { agent: req(plain<string>()), state: req(plain<string>()), previous: plain<string | null>(), callId: plain<string | null>(), reason: plain<string | null>() },
  'agent.login': { agent: req(plain<string>()) },
  'agent.logout': { agent: req(plain<string>()), cause: plain<string | null>() },
  'queue.paused': { queue: req(plain<string>()), paused: req(plain<boolean>()) },
  // Supervisors (issue 16): who did what to which agent/queue/call; from/to are states or
  // configured away reasons (labels), never free text. Monitoring: mode and its span, no audio.
  'supervisor.action': { supervisor: req(plain<string>()), action: req(plain<string>()), agent: plain<string | null>(), queue: plain<string | null>(), from: plain<string | null>(), to: plain<string | null>() },
  'supervisor.monitor': {
    supervisor: req(plain<string>()),
    callId: req(plain<string>()),
    agent: plain<string | null>(),
    mode: plain<string>(),
    startedAt: plain<string>(),
    endedAt: plain<string>(),
    durationS: plain<number>(),
    reason: plain<string>(),
  },
  'callback.requested': { callbackId: plain<string>(), queue: plain<string>(), originCallId: plain<string | null>(), number: number(), name: text() },
  'callback.completed': { callbackId: plain<string>(), queue: plain<string>(), state: plain<string>(), attempts: plain<number>(), agent: plain<string | null>() },
  // As the call writes it (gateway/calls/call.ts): the vault's metadata under its own names plus the
  // recorder's end cause; only the fields listed plain here leave.
  'recording.stored': {
    recordingId: plain<string>(),
    callId: plain<string>(),
    queue: plain<string | null>(),
    agent: plain<string | null>(),
    startedAt: plain<string>(),
    durationMs: plain<number>(),
    bytes: plain<number>(),
    codec: plain<string>(),
    sha256: plain<string | null>(),
    keyId: plain<string>(),
    id: local<string>(),
    createdAt: local<string>(),
    retentionUntil: local<string | null>(),
    state: local<string>(),
    cause: local<string>(),
  },
  'recording.hold': { recordingId: plain<string>(), callId: plain<string | null>(), hold: plain<boolean>() },
  // Transcripts (issue 18): the text never leaves. A keyword alert carries the configured keyword
  // (a label from speech.transcripts.keywords), who said it and when. The stored event carries ids
  // and a count; its numeric aggregates (sentimentScore, callerSentiment, agentSentiment, talkRatio)
  // leave only when a site lists them in sync.policy.events.
  'transcript.keyword': { callId: plain<string>(), keyword: req(plain<string>()), speaker: plain<string>(), atMs: plain<number>() },
  'transcript.stored': {
    callId: plain<string>(),
    transcriptId: req(plain<string>()),
    recordingId: plain<string | null>(),
    utterances: plain<number>(),
    sentimentScore: local<number | null>(),
    callerSentiment: local<number | null>(),
    agentSentiment: local<number | null>(),
    talkRatio: local<number | null>(),
  },
  'recording.audit-head': { seq: req(plain<number>()), hash: req(plain<string>()) },
  'recording.alarm': { alarm: req(plain<string>()), state: req(plain<string>()), freeBytes: plain<number>(), minFreeBytes: plain<number>() },
  // Backups: outcome and sizes only (no paths, no error text, no passphrase-derived values).
  'backup.completed': { backupId: req(plain<string>()), trigger: req(plain<string>()), durationMs: plain<number>(), bytes: plain<number>(), recordings: plain<number>(), recordingsCopied: plain<number>(), deleted: plain<number>() },
  'backup.failed': { code: req(plain<string>()), trigger: req(plain<string>()) },
  'recording.skipped': { ...CALL, reason: plain<string>(), freeBytes: plain<number>() },
  'recording.stopped': { ...CALL, reason: plain<string>(), freeBytes: plain<number>() },
  'trunk.alarm': {
    trunk: req(plain<string>()),
    span: plain<number | null>(),
    alarm: plain<string>(),
    state: plain<string>(),
    severity: plain<string>(),
    driver: plain<string | null>(),
    device: plain<string | null>(),
    causes: plain<readonly string[]>(),
    bpv: plain<number>(),
    crc4: plain<number>(),
    ebit: plain<number>(),
    fas: plain<number>(),
    slips: plain<number>(),
    raisedAt: plain<string>(),
    durationS: plain<number>(),
    code: plain<string>(),
    message: plain<string>(),
    lineState: plain<string>(),
  },
  'health.alarm': { metric: req(plain<string>()), state: req(plain<string>()), value: req(plain<number>()), threshold: req(plain<number>()), unit: req(plain<string>()) },
  // The HTTPS/SIP-TLS server certificate nears expiry (gateway/certs/expiry.ts); subject is the box's CN.
  'certificate.expiry': { state: req(plain<string>()), daysLeft: req(plain<number>()), validTo: plain<string>(), subject: plain<string>(), fingerprint256: plain<string>(), source: plain<string>() },
  'hw.fault': { component: req(plain<string>()), device: req(plain<string>()), state: req(plain<string>()), code: plain<string>(), message: plain<string>() },
  'config.applied': { version: req(plain<number>()), appliedAt: req(plain<string>()) },
  'config.rejected': { version: req(plain<number>()), error: req(plain<string>()) },
  'sync.dropped': { count: req(plain<number>()), byLimit: plain<number>(), byTtl: plain<number>(), fromSeq: plain<number | null>(), toSeq: plain<number | null>() },
} satisfies Readonly<Record<string, Fields>>;

type Catalogue = typeof CLOUD_EVENTS;

/** Every event type the appliance may write to the outbox. */
export type CloudEventType = keyof Catalogue;

type ValueOf<F> = F extends EventField<EventFieldKind, infer V, boolean> ? V : never;
type RequiredKeys<F> = { [K in keyof F]: F[K] extends EventField<EventFieldKind, unknown, true> ? K : never }[keyof F];
type Payload<F> = { [K in Exclude<keyof F, RequiredKeys<F>>]?: ValueOf<F[K]> | undefined } & { [K in RequiredKeys<F>]: ValueOf<F[K]> };
/** Shows a payload as one object type in editors and errors. */
type Flat<O> = { [K in keyof O]: O[K] };

/**
 * The payload of event type T (the outbox adds the envelope). Distributes over a union of types,
 * so `append(tx, on ? 'call.agent-hold' : 'call.agent-unhold', {...})` checks against either.
 */
export type CloudEventData<T extends CloudEventType> = T extends CloudEventType ? Flat<Payload<Catalogue[T]>> : never;

/** An event as a value: its type with its payload (a union over T, so `type` narrows `data`). */
export type CloudEvent<T extends CloudEventType = CloudEventType> = T extends CloudEventType ? { type: T; data: CloudEventData<T> } : never;

/** Writes a cloud event inside the caller's transaction `tx` (the outbox, or whatever forwards to it). */
export interface CloudEventAppender<Tx> {
  append<T extends CloudEventType>(tx: Tx, type: T, data: CloudEventData<T>): Promise<number>;
}

const TYPES: ReadonlySet<string> = new Set(Object.keys(CLOUD_EVENTS));

/** Narrows untyped input (JSON, a cloud command): whether `type` is a catalogued event type. */
export function isCloudEventType(type: string): type is CloudEventType {
  return TYPES.has(type);
}

/** The policy's built-in allow-lists: each catalogued type's fields that are not `local`. */
export function allowListsOf(catalogue: Readonly<Record<string, Fields>>): Readonly<Record<string, Readonly<Record<string, FieldKind>>>> {
  const out: Record<string, Readonly<Record<string, FieldKind>>> = {};
  for (const [type, fields] of Object.entries(catalogue)) {
    const allowed: Record<string, FieldKind> = {};
    for (const [field, f] of Object.entries(fields)) if (f.kind !== 'local') allowed[field] = f.kind;
    out[type] = Object.freeze(allowed);
  }
  return Object.freeze(out);
}
