import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { SyncError } from './errors';
import { allowListsOf, CLOUD_EVENTS, type FieldKind } from './events';

/**
 * Residency policy: what of an event may leave the site. Applied by the outbox when the row is
 * written, so no code path can put anything else on the wire.
 *
 * Per event type an allow-list of fields, each of a kind:
 * - `plain`  leaves as it is: a string (at most 256 characters; a free-standing run of 7+ digits in
 *            it is masked like a number, as a safety net), a number, a boolean, null, or an array of at most 32 of those;
 * - `number` a caller/called number or SIP URI: leaves only masked (last N digits) or as an
 *            HMAC-SHA256 keyed by the site secret, or not at all (mode `drop`);
 * - `text`   free text (names, notes, DTMF digits, reasons typed by people): dropped unless the
 *            field is listed in `allowText` ("event.type.field"); then it leaves with digit runs masked.
 * Fields not listed are dropped. Binary values (Buffer, typed arrays) and nested objects never
 * leave, whatever the kind: recordings' audio cannot be carried by any event.
 */
export type { FieldKind };

/** The envelope every event carries; event data cannot set these. */
export const ENVELOPE_FIELDS = ['id', 'seq', 'ts', 'bootId', 'type'] as const;

/**
 * The built-in allow-lists, derived from the event catalogue (events.ts): the fields of each
 * catalogued type that are not `local`. Event types not listed leave as the envelope only.
 */
export const DEFAULT_EVENT_FIELDS: Readonly<Record<string, Readonly<Record<string, FieldKind>>>> = allowListsOf(CLOUD_EVENTS);

const NUMBER_MODES = ['mask', 'hmac', 'drop'] as const;
export type NumberMode = (typeof NUMBER_MODES)[number];
const fieldRef = z.string().regex(/^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*\.[A-Za-z][A-Za-z0-9_]*$/, 'must be EVENT_TYPE.FIELD, e.g. call.note.note');

export const policyConfigSchema = z
  .object({
    numbers: z
      .object({
        mode: z.enum(NUMBER_MODES).default('mask'),
        /** Digits shown at the end of a masked number (never more than half its digits). */
        keepDigits: z.number().int().min(0).max(6).default(4),
      })
      .strict()
      .prefault({}),
    /** Free-text fields allowed to leave, as "EVENT_TYPE.FIELD". */
    allowText: z.array(fieldRef).default([]),
    /** Fields removed from the allow-lists, as "EVENT_TYPE.FIELD". */
    deny: z.array(fieldRef).default([]),
    /** Extra event types or fields. A field the built-in lists call `number` or `text` keeps that kind. */
    events: z.record(z.string().regex(/^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$/), z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/), z.enum(['plain', 'number', 'text']))).default({}),
  })
  .strict();

export type PolicyConfig = z.infer<typeof policyConfigSchema>;
export type PolicyConfigInput = z.input<typeof policyConfigSchema>;

const MAX_PLAIN_STRING = 256;
const MAX_ARRAY = 32;
/** In plain strings: a free-standing run of 7+ digits (not part of an id, hash, time or date). */
const PLAIN_DIGIT_RUN = /(?<![\w+-])\+?\d{7,}(?![\w-])/g;
/** Keys whose values are treated as phone numbers in live payloads. */
const NUMBER_KEY = /^(from|to|caller|callee|called|calling|number|ani|dnis|msisdn|phone|asserted|assertedidentity|originalcalled)(uri|user|number)?$/i;
/** In allowed free text: 7+ digits, separators allowed (people write numbers many ways). */
const TEXT_DIGIT_RUN = /\+?\d(?:[ ().\/-]{0,2}\d){6,}/g;

export class Policy {
  readonly config: PolicyConfig;
  private readonly events: Map<string, Map<string, FieldKind>>;
  private readonly allowText: Set<string>;
  private readonly hmacKey: Buffer | undefined;

  constructor(config: PolicyConfigInput = {}, opts: { hmacKey?: Buffer | string } = {}) {
    const parsed = policyConfigSchema.safeParse(config);
    if (!parsed.success) throw new SyncError('SYNC_POLICY_INVALID', `residency policy: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    this.config = parsed.data;
    this.hmacKey = opts.hmacKey === undefined ? undefined : Buffer.from(opts.hmacKey);
    if (this.config.numbers.mode === 'hmac' && (!this.hmacKey || this.hmacKey.length < 16)) {
      throw new SyncError('SYNC_POLICY_INVALID', 'residency policy: numbers.mode "hmac" needs a site secret of at least 16 bytes');
    }
    this.events = new Map(Object.entries(DEFAULT_EVENT_FIELDS).map(([t, f]) => [t, new Map(Object.entries(f))]));
    for (const [type, fields] of Object.entries(this.config.events)) {
      const map = this.events.get(type) ?? new Map<string, FieldKind>();
      for (const [field, kind] of Object.entries(fields)) {
        if ((ENVELOPE_FIELDS as readonly string[]).includes(field)) throw new SyncError('SYNC_POLICY_INVALID', `residency policy: ${type}.${field} is an envelope field`);
        const builtIn = DEFAULT_EVENT_FIELDS[type]?.[field];
        if (builtIn && builtIn !== 'plain' && builtIn !== kind) {
          throw new SyncError('SYNC_POLICY_INVALID', `residency policy: ${type}.${field} is a ${builtIn} field and cannot be made ${kind}${builtIn === 'text' ? ' (list it in allowText instead)' : ''}`);
        }
        map.set(field, kind);
      }
      this.events.set(type, map);
    }
    for (const ref of this.config.deny) {
      const { type, field } = splitRef(ref);
      this.events.get(type)?.delete(field);
    }
    this.allowText = new Set(this.config.allowText);
  }

  /** The fields of `data` that may leave, transformed as the policy says. */
  apply(type: string, data: Record<string, unknown>): Record<string, unknown> {
    const fields = this.events.get(type);
    const out: Record<string, unknown> = {};
    if (!fields) return out;
    for (const [field, kind] of fields) {
      if (!Object.prototype.hasOwnProperty.call(data, field)) continue;
      const v = this.value(type, field, kind, data[field]);
      if (v !== undefined) out[field] = v;
    }
    return out;
  }

  /** How a caller number leaves under this policy (undefined: it does not). */
  number(value: unknown): string | undefined {
    if (typeof value !== 'string' && typeof value !== 'number') return undefined;
    const user = numberPart(String(value));
    switch (this.config.numbers.mode) {
      case 'drop':
        return undefined;
      case 'hmac':
        return createHmac('sha256', this.hmacKey as Buffer)
          .update(normaliseNumber(user))
          .digest('hex');
      case 'mask':
        return maskNumber(user, this.config.numbers.keepDigits);
    }
  }

  /**
   * Safety net for what leaves outside the outbox (live snapshots, command results): a deep copy
   * where fields named like numbers (from, to, caller, number, fromUri, ...) leave as `number()`
   * says, other strings get free-standing 7+ digit runs masked, and binary values are dropped.
   */
  scrubLive(value: unknown, depth = 0): unknown {
    if (value === null || typeof value === 'boolean') return value;
    if (typeof value === 'number') return Number.isFinite(value) ? value : null;
    if (typeof value === 'string') return value.replace(PLAIN_DIGIT_RUN, (run) => maskNumber(run, this.config.numbers.keepDigits));
    if (typeof value !== 'object' || depth > 8 || Buffer.isBuffer(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return undefined;
    if (Array.isArray(value)) return value.map((v) => this.scrubLive(v, depth + 1) ?? null);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const x = NUMBER_KEY.test(k) && (typeof v === 'string' || typeof v === 'number') ? this.number(v) : this.scrubLive(v, depth + 1);
      if (x !== undefined) out[k] = x;
    }
    return out;
  }

  /** Event types with an allow-list. */
  eventTypes(): string[] {
    return [...this.events.keys()].sort();
  }

  /** Text for `ccedge policy explain EVENT_TYPE`: what of this event leaves the site. */
  explain(type: string): string {
    const fields = this.events.get(type);
    const lines = [`${type}: what leaves the site (residency policy)`, '  always: id, seq, ts, bootId, type (the envelope)'];
    if (!fields || fields.size === 0) {
      lines.push(fields ? '  no data fields leave' : '  not a known event type: no data fields leave, only the envelope');
    } else {
      const width = Math.max(...[...fields.keys()].map((f) => f.length));
      for (const [field, kind] of [...fields].sort(([a], [b]) => a.localeCompare(b))) {
        lines.push(`  ${field.padEnd(width)}  ${this.describe(type, field, kind)}`);
      }
    }
    lines.push('  strings are cut at 256 characters; a free-standing run of 7+ digits in them is masked like a number');
    lines.push('  everything else: dropped; binary values and nested objects never leave (no audio, no recording contents)');
    return `${lines.join('\n')}\n`;
  }

  private describe(type: string, field: string, kind: FieldKind): string {
    if (kind === 'plain') return 'as is';
    if (kind === 'text') {
      return this.allowText.has(`${type}.${field}`)
        ? 'free text, allowed by allowText: leaves with digit runs masked'
        : `free text: dropped (allow with sync.policy.allowText: ["${type}.${field}"])`;
    }
    const n = this.config.numbers;
    if (n.mode === 'drop') return 'phone number: dropped (numbers.mode drop)';
    if (n.mode === 'hmac') return 'phone number: HMAC-SHA256 (hex) of its digits, keyed by the site secret';
    return `phone number: masked, last ${n.keepDigits} digits at most (never more than half), e.g. ${maskNumber('+15551234567', n.keepDigits)}`;
  }

  private value(type: string, field: string, kind: FieldKind, v: unknown): unknown {
    if (kind === 'number') return this.number(v);
    if (kind === 'text') {
      if (!this.allowText.has(`${type}.${field}`) || typeof v !== 'string') return undefined;
      return v.slice(0, MAX_PLAIN_STRING).replace(TEXT_DIGIT_RUN, (run) => maskNumber(run, this.config.numbers.keepDigits));
    }
    if (Array.isArray(v)) {
      const items = v.slice(0, MAX_ARRAY).map((x) => this.primitive(x));
      return items.some((x) => x === undefined) ? undefined : items;
    }
    return this.primitive(v);
  }

  private primitive(v: unknown): unknown {
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'string') return v.slice(0, MAX_PLAIN_STRING).replace(PLAIN_DIGIT_RUN, (run) => maskNumber(run, this.config.numbers.keepDigits));
    return undefined; // objects, Buffers, typed arrays, functions: never
  }
}

function splitRef(ref: string): { type: string; field: string } {
  const i = ref.lastIndexOf('.');
  return { type: ref.slice(0, i), field: ref.slice(i + 1) };
}

/** The user part of a SIP/tel URI or name-addr; the value itself otherwise. */
export function numberPart(value: string): string {
  const m = /(?:sips?|tel):([^@;>?]+)/i.exec(value);
  return (m ? m[1] : value).trim();
}

function normaliseNumber(user: string): string {
  const digits = user.replace(/\D/g, '');
  return digits.length > 0 ? digits : user.toLowerCase();
}

/** Shows at most `keep` trailing digits and never more than half of them; the rest become `*`. */
export function maskNumber(user: string, keep: number): string {
  const digits = user.replace(/\D/g, '');
  if (digits.length === 0) return '***';
  const shown = Math.min(keep, Math.floor(digits.length / 2));
  return `${user.trim().startsWith('+') ? '+' : ''}${'*'.repeat(digits.length - shown)}${shown > 0 ? digits.slice(-shown) : ''}`;
}
