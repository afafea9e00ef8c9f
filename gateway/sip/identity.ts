/**
 * Caller identity of an inbound INVITE: tel: URIs, P-Asserted-Identity (RFC 3325),
 * Remote-Party-ID (draft-ietf-sip-privacy-04, still sent by many PBXs), Privacy (RFC 3323),
 * Diversion (RFC 5806) and History-Info (RFC 7044). Pure functions: every header is attacker
 * input, so each parser is linear, bounded and never throws.
 */
import type { SipRequest } from 'sip';

/** Header values longer than this are not parsed for identity (a real one is a few hundred bytes). */
const MAX_HEADER = 4096;
/** Entries of one list header (Diversion, History-Info, P-Asserted-Identity) looked at. */
const MAX_ENTRIES = 16;
/** RFC 3966 visual separators: removed from telephone numbers wherever a number is compared or stored. */
const VISUAL_SEPARATORS = /[-.() ]/g;
/** A user part that is a telephone number written with separators (no letters: `alice.smith` stays). */
const PHONE_LIKE = /^\+?[0-9*#][0-9*#\-.() ]*$/;

/** `+49 (30) 123-45` → `+493012345`; anything that is not phone-like is returned unchanged. */
export function normaliseNumber(user: string): string {
  return PHONE_LIKE.test(user) ? user.replace(VISUAL_SEPARATORS, '') : user;
}

/**
 * The user of a sip:, sips: or tel: URI, %-decoded and normalised (`tel:+49-30-1;phone-context=x`
 * → `+49301`, `sip:+49.30.1@pbx;user=phone` → `+49301`); null for other schemes or no user.
 */
export function uriUser(uri: string | undefined | null): string | null {
  if (typeof uri !== 'string' || uri.length > MAX_HEADER) return null;
  const m = /^\s*(sips?|tel):([^\s]*)/i.exec(uri);
  if (!m) return null;
  const rest = m[2];
  let user: string;
  if (m[1].toLowerCase() === 'tel') {
    // tel:NUMBER;params — the number ends at the first parameter (or header, for a stray ?).
    user = rest.split(/[;?]/, 1)[0];
  } else {
    const at = rest.indexOf('@');
    if (at <= 0) return null;
    // sip:user;params@host is legal (RFC 3261 user parameters): the user ends at ; or :password.
    user = rest.slice(0, at).split(/[;:]/, 1)[0];
  }
  if (!user) return null;
  try {
    user = decodeURIComponent(user);
  } catch {
    // A malformed %-escape: keep the user part as sent.
  }
  return normaliseNumber(user);
}

export interface NameAddrEntry {
  name: string | null;
  uri: string;
  /** Header parameters after the >, lower-cased names (`reason`, `index`, `privacy`, …). */
  params: Record<string, string>;
}

/**
 * A comma-separated list of name-addrs (`"A, B" <sip:1@x>;p=1, <tel:+1>`) split outside quotes
 * and angle brackets. Entries without <…> are taken up to their first `;`.
 */
export function parseNameAddrList(value: unknown): NameAddrEntry[] {
  if (typeof value !== 'string' || value.length > MAX_HEADER) return [];
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  let angle = false;
  for (let i = 0; i < value.length && parts.length < MAX_ENTRIES; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') angle = true;
    else if (c === '>') angle = false;
    else if (c === ',' && !angle) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  if (parts.length < MAX_ENTRIES) parts.push(value.slice(start));
  const out: NameAddrEntry[] = [];
  for (const raw of parts) {
    const part = raw.trim();
    if (!part) continue;
    const lt = part.indexOf('<');
    const gt = lt >= 0 ? part.indexOf('>', lt) : -1;
    let name: string | null = null;
    let uri: string;
    let paramText: string;
    if (lt >= 0 && gt > lt) {
      const n = part.slice(0, lt).trim();
      name = n ? (n.startsWith('"') && n.endsWith('"') && n.length >= 2 ? n.slice(1, -1) : n) : null;
      uri = part.slice(lt + 1, gt).trim();
      paramText = part.slice(gt + 1);
    } else {
      const semi = part.indexOf(';');
      uri = (semi >= 0 ? part.slice(0, semi) : part).trim();
      paramText = semi >= 0 ? part.slice(semi) : '';
    }
    const params: Record<string, string> = {};
    for (const p of paramText.split(';').slice(0, 32)) {
      const eq = p.indexOf('=');
      const k = (eq >= 0 ? p.slice(0, eq) : p).trim().toLowerCase();
      if (!k) continue;
      params[k] = (eq >= 0 ? p.slice(eq + 1) : '').trim().replace(/^"(.*)"$/, '$1');
    }
    out.push({ name, uri, params });
  }
  return out;
}

export interface CallerIdentity {
  /** The caller for routing, VIP, callbacks and records (asserted when trusted, else From). */
  number: string | null;
  name: string | null;
  /** Where `number` came from. */
  source: 'pai' | 'rpid' | 'from';
  /** The asserted identity's URI as received (null: none, or the trunk does not trust it). */
  asserted: string | null;
  /** The Privacy header (or RPID privacy), lower-cased, when it asks to hide the identity; else null. */
  privacy: string | null;
  /** The number originally called, from Diversion (its last entry) or History-Info (its first). */
  originalCalled: string | null;
  /** The called number (To user; a tel: Request-URI when To has none). */
  called: string | null;
}

const PRIVACY_HIDING = new Set(['id', 'user', 'header', 'session', 'critical', 'full', 'uri', 'name']);

/** `Privacy: id;critical` → "id;critical" when it asks for anything hidden; `none` → null. */
export function privacyOf(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 256) return null;
  const tokens = value
    .toLowerCase()
    .split(/[;,]/)
    .map((t) => t.trim())
    .filter(Boolean);
  return tokens.some((t) => PRIVACY_HIDING.has(t)) ? tokens.join(';') : null;
}

function displayName(name: string | null | undefined): string | null {
  const n = name?.trim();
  if (!n) return null;
  return n.startsWith('"') && n.endsWith('"') && n.length >= 2 ? n.slice(1, -1) : n;
}

/**
 * The caller and called identities of an INVITE. `trustIdentity` (per trunk): the PBX's
 * P-Asserted-Identity, else Remote-Party-ID (party=calling), is the caller. Privacy is honoured
 * whether trusted or not: hiding a number from the agent is never the unsafe choice.
 */
export function callerIdentity(rq: SipRequest, trustIdentity: boolean): CallerIdentity {
  const h = rq.headers;
  const fromUri = typeof h.from?.uri === 'string' ? h.from.uri : '';
  let number = uriUser(fromUri);
  let name = displayName(h.from?.name);
  let source: CallerIdentity['source'] = 'from';
  let asserted: string | null = null;
  let privacy = privacyOf(h.privacy);

  if (trustIdentity) {
    // RFC 3325 allows one sip: and one tel: value; the first with a user part wins.
    const pai = parseNameAddrList(h['p-asserted-identity']).find((e) => uriUser(e.uri) !== null);
    const rpid = pai ? undefined : parseNameAddrList(h['remote-party-id']).find((e) => (e.params.party ?? 'calling') === 'calling' && uriUser(e.uri) !== null);
    const chosen = pai ?? rpid;
    if (chosen) {
      number = uriUser(chosen.uri);
      name = displayName(chosen.name) ?? name;
      source = pai ? 'pai' : 'rpid';
      asserted = chosen.uri.slice(0, 256);
      if (rpid && !privacy) {
        const p = rpid.params.privacy;
        if (p && p !== 'off' && p !== 'none') privacy = p;
      }
    }
  }

  // Diversion: the newest diversion is on top, so the originally called number is the last entry.
  const diversion = parseNameAddrList(h.diversion).filter((e) => uriUser(e.uri) !== null);
  let originalCalled: string | null = diversion.length > 0 ? uriUser(diversion[diversion.length - 1].uri) : null;
  if (originalCalled === null) {
    // History-Info: entries by index; index 1 (or the first listed) is the original target.
    const hi = parseNameAddrList(h['history-info']).filter((e) => uriUser(e.uri) !== null);
    const first = hi.find((e) => e.params.index === '1') ?? hi[0];
    if (first) originalCalled = uriUser(first.uri);
  }
  const toUri = typeof h.to?.uri === 'string' ? h.to.uri : '';
  const called = uriUser(toUri) ?? uriUser(rq.uri);
  return { number, name, source, asserted, privacy, originalCalled, called };
}

/** How a private caller is shown to agents. */
export const PRIVATE_CALLER = 'Private';
