import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { parse, write, type MediaDescription, type SessionDescription } from 'sdp-transform';
import { MediaError } from '../errors';

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
export type AudioCodec = 'PCMU' | 'PCMA';

export interface NegotiatedAudio {
  codec: AudioCodec;
  payloadType: number;
  clockRate: 8000;
  telephoneEventPayloadType?: number;
  remoteAddress: string;
  remotePort: number;
  /** Direction as the offer states it (media level overrides session level). */
  remoteDirection: Direction;
  /** Direction we put in the answer. */
  localDirection: Direction;
  /** The offered ptime if it was sane, else 20. We always answer and send 20. */
  ptime: number;
  /** The remote will not receive media (sendonly, inactive or c=0.0.0.0): do not send to it. */
  onHold: boolean;
  /** SDES-SRTP (RFC 4568) keys when the stream is RTP/SAVP; absent: plain RTP. */
  srtp?: SdesKeys;
}

export type SrtpPolicy = 'off' | 'optional' | 'required';
export const SDES_SUITE = 'AES_CM_128_HMAC_SHA1_80';

/** Master key || master salt (30 bytes) of each direction, for media/rtp/srtp. */
export interface SdesKeys {
  suite: typeof SDES_SUITE;
  /** What we encrypt with (sent in our a=crypto). */
  localKeySalt: Buffer;
  /** What the peer encrypts with (from its a=crypto). */
  remoteKeySalt: Buffer;
  /** The crypto tag chosen in the answer. */
  tag: number;
}

export interface AnswerOptions {
  localAddress: string;
  localPort: number;
  sessionId: string;
  sessionVersion: number;
  /** Codecs we accept, in our preference order (the order only matters for our own offers). */
  codecs: AudioCodec[];
  userAgent?: string;
  /**
   * A re-offer inside an established dialog (re-INVITE): there c=0.0.0.0 is RFC 2543 hold. In an
   * initial offer (the default) it names no one to send to and is refused like multicast.
   */
  reoffer?: boolean;
  /** SDES-SRTP policy of the trunk (default off: RTP/SAVP offers are declined). */
  srtp?: SrtpPolicy;
  /** Our 30-byte key||salt; kept for the call so a re-INVITE answer does not re-key. Default: random. */
  localKeySalt?: Buffer;
}

/** Bounds that keep a hostile offer from costing more than a normal one to process. */
const MAX_SDP_BYTES = 32 * 1024;
const MAX_M_LINES = 16;
const ANSWER_PTIME = 20;
const TELEPHONE_EVENT_PT = 101;
const STATIC_PT: Readonly<Record<number, AudioCodec>> = { 0: 'PCMU', 8: 'PCMA' };
const CODEC_PT: Readonly<Record<AudioCodec, number>> = { PCMU: 0, PCMA: 8 };
const DIRECTIONS: readonly Direction[] = ['sendrecv', 'sendonly', 'recvonly', 'inactive'];

const invalid = (why: string): MediaError => new MediaError('SDP_INVALID', why);
const noCodec = (why: string): MediaError => new MediaError('SDP_NO_COMMON_CODEC', why);
const refused = (why: string): MediaError => new MediaError('SDP_ADDRESS_REFUSED', why);
const srtpRequired = (why: string): MediaError => new MediaError('SDP_SRTP_REQUIRED', why);
/** At most this many a=crypto lines are looked at: a hostile offer cannot make us parse thousands. */
const MAX_CRYPTO_LINES = 16;

/**
 * Why media must not go to this c= address, or null. Multicast (224.0.0.0/4) and the limited
 * broadcast would make us a traffic source for a whole segment (the hold tone went to a group);
 * the optional /ttl suffix of a multicast c= is looked through. Loopback stays allowed (tests and
 * same-host peers use it).
 */
export function refusedMediaAddress(ip: string, reoffer: boolean): string | null {
  const address = ip.split('/', 1)[0];
  if (!isIPv4(address)) return null;
  const first = Number(address.split('.', 1)[0]);
  if (first >= 224 && first <= 239) return 'multicast';
  if (address === '255.255.255.255') return 'broadcast';
  if (address === '0.0.0.0' && !reoffer) return 'unspecified (0.0.0.0 is hold only in a re-offer)';
  return null;
}

/**
 * RFC 3264 answerer for one audio stream. Any failure is a MediaError (SDP_INVALID → 400-class,
 * SDP_NO_COMMON_CODEC and SDP_ADDRESS_REFUSED → 488); nothing else escapes, whatever the offer contains.
 */
export function negotiateOffer(offerSdp: string, opts: AnswerOptions): { answerSdp: string; audio: NegotiatedAudio } {
  checkOptions(opts);
  const offer = parseOffer(offerSdp);
  if (offer.connection !== undefined) {
    // A session-level group address is refused even if media lines override it: such an offer is
    // not from a PBX we want to talk to. 0.0.0.0 is judged where it applies (per audio line).
    const why = refusedMediaAddress(String(offer.connection.ip), true);
    if (why) throw refused(`session c= address ${String(offer.connection.ip).slice(0, 64)} is ${why}`);
  }

  let audio: NegotiatedAudio | null = null;
  let firstProblem: MediaError | null = null;
  const answerMedia: MediaDescription[] = [];

  for (let i = 0; i < offer.media.length; i++) {
    const m = offer.media[i];
    if (typeof m.type !== 'string' || m.type === '' || typeof m.protocol !== 'string') {
      // We could not echo this line back, and RFC 3264 requires every m-line in the answer.
      throw invalid(`m-line ${i + 1} is malformed`);
    }
    if (audio === null && m.type === 'audio' && m.port !== 0) {
      try {
        const chosen = answerAudio(offer, m, i, opts);
        audio = chosen.audio;
        answerMedia.push(chosen.media);
        continue;
      } catch (err) {
        if (!(err instanceof MediaError)) throw err;
        firstProblem ??= err;
      }
    }
    answerMedia.push(rejected(m));
  }

  if (audio === null) throw firstProblem ?? noCodec('the offer has no usable audio stream');
  const answerSdp = write(sessionSkeleton(opts, answerMedia));
  return { answerSdp, audio };
}

/** An offer for outbound calls: one audio stream with our codecs and telephone-event 101. */
export function buildOffer(opts: AnswerOptions & { direction?: Direction }): string {
  checkOptions(opts);
  const codecs = opts.codecs.filter((c, i) => opts.codecs.indexOf(c) === i);
  if (codecs.length === 0) throw new Error('buildOffer: no codecs configured');
  const pts = codecs.map((c) => CODEC_PT[c]);
  const media: MediaDescription = {
    type: 'audio',
    port: opts.localPort,
    protocol: 'RTP/AVP',
    payloads: [...pts, TELEPHONE_EVENT_PT].join(' '),
    rtp: [
      ...codecs.map((c) => ({ payload: CODEC_PT[c], codec: c, rate: 8000 })),
      { payload: TELEPHONE_EVENT_PT, codec: 'telephone-event', rate: 8000 },
    ],
    fmtp: [{ payload: TELEPHONE_EVENT_PT, config: '0-16' }],
    ptime: ANSWER_PTIME,
    direction: opts.direction ?? 'sendrecv',
  };
  if (opts.srtp === 'optional' || opts.srtp === 'required') {
    // SDES offers RTP/SAVP: an answerer without SRTP declines it (RFC 4568 has no fallback in one offer).
    if (!opts.localKeySalt || opts.localKeySalt.length !== 30) throw new Error('buildOffer: SRTP needs localKeySalt (30 bytes)');
    media.protocol = 'RTP/SAVP';
    media.crypto = [{ id: 1, suite: SDES_SUITE, config: `inline:${opts.localKeySalt.toString('base64')}` }];
  }
  return write(sessionSkeleton(opts, [media]));
}

function checkOptions(opts: AnswerOptions): void {
  // These come from our own config, so a bad value is a programming error, not hostile input.
  if (!isIPv4(opts.localAddress)) throw new Error(`SDP local address must be an IPv4 literal: ${opts.localAddress}`);
  if (!Number.isInteger(opts.localPort) || opts.localPort < 1 || opts.localPort > 65535) {
    throw new Error(`SDP local port out of range: ${opts.localPort}`);
  }
  if (!/^\d{1,20}$/.test(opts.sessionId)) throw new Error(`SDP session id must be numeric: ${opts.sessionId}`);
}

function parseOffer(sdp: unknown): SessionDescription {
  if (typeof sdp !== 'string' || sdp.trim() === '') throw invalid('empty SDP body');
  if (sdp.length > MAX_SDP_BYTES) throw invalid(`SDP body too large (${sdp.length} bytes, limit ${MAX_SDP_BYTES})`);
  const firstLine = sdp.replace(/^\uFEFF?\s*/, '').split(/\r\n|\r|\n/, 1)[0].trim();
  if (firstLine !== 'v=0') throw invalid('SDP must start with v=0');
  const mLines = sdp.match(/^m=/gm)?.length ?? 0;
  if (mLines === 0) throw invalid('SDP has no m= line');
  if (mLines > MAX_M_LINES) throw invalid(`SDP has ${mLines} m= lines (limit ${MAX_M_LINES})`);
  try {
    return parse(sdp);
  } catch (err) {
    throw invalid(`unparseable SDP: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function answerAudio(
  offer: SessionDescription,
  m: MediaDescription,
  index: number,
  opts: AnswerOptions,
): { audio: NegotiatedAudio; media: MediaDescription } {
  const where = `audio m-line ${index + 1}`;
  const policy = opts.srtp ?? 'off';
  const profile = m.protocol.toUpperCase();
  let sdes: { tag: number; remoteKeySalt: Buffer } | null = null;
  if (profile === 'RTP/SAVP') {
    if (policy === 'off') throw noCodec(`${where}: profile RTP/SAVP (SRTP) is off for this trunk`);
    sdes = chooseCrypto(m);
    if (!sdes) throw noCodec(`${where}: no usable a=crypto (we accept ${SDES_SUITE} with an inline key, no MKI)`);
  } else if (profile === 'RTP/AVP') {
    if (policy === 'required') throw srtpRequired(`${where}: plain RTP/AVP offered, this trunk requires SRTP (RTP/SAVP with a=crypto ${SDES_SUITE})`);
  } else {
    throw noCodec(`${where}: profile ${m.protocol} not supported (RTP/AVP, or RTP/SAVP with SDES)`);
  }
  const port = m.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(`${where}: port ${String(port)} out of range`);
  }
  const conn = m.connection ?? offer.connection;
  if (conn === undefined) throw invalid(`${where}: no c= line at session or media level`);
  if (Number(conn.version) === 6) throw invalid(`${where}: IPv6 media not supported`);
  const address = String(conn.ip);
  const why = Number(conn.version) === 4 ? refusedMediaAddress(address, opts.reoffer === true) : null;
  if (why) throw refused(`${where}: c= address ${address.slice(0, 64)} is ${why}`);
  if (Number(conn.version) !== 4 || !isIPv4(address)) {
    // Never resolve names from SDP: it is attacker-controlled and DNS would stall the call path.
    throw invalid(`${where}: c= address "${address}" is not an IPv4 literal`);
  }

  const formats = formatList(m);
  let codec: { name: AudioCodec; pt: number } | null = null;
  let tePt: number | undefined;
  for (const f of formats) {
    const pt = Number(f);
    if (!/^\d{1,3}$/.test(f) || pt > 127) continue;
    const map = (m.rtp ?? []).find((r) => Number(r.payload) === pt);
    let name: string | undefined;
    if (map !== undefined) {
      const channels = map.encoding === undefined ? 1 : Number(map.encoding);
      name = Number(map.rate) === 8000 && channels === 1 ? String(map.codec).toUpperCase() : undefined;
    } else {
      name = STATIC_PT[pt];
    }
    if (name === 'TELEPHONE-EVENT') {
      tePt ??= pt;
    } else if (codec === null && (name === 'PCMU' || name === 'PCMA') && opts.codecs.includes(name)) {
      codec = { name, pt };
    }
  }
  if (codec === null) {
    throw noCodec(`${where}: no common codec (offered ${formats.join(' ') || 'none'}; we accept ${opts.codecs.join(', ')})`);
  }

  const remoteDirection = toDirection(m.direction) ?? toDirection(offer.direction) ?? 'sendrecv';
  const remoteSends = remoteDirection === 'sendrecv' || remoteDirection === 'sendonly';
  // RFC 2543 hold (c=0.0.0.0) predates a=sendonly and means the same: do not send to me.
  const remoteReceives = (remoteDirection === 'sendrecv' || remoteDirection === 'recvonly') && address !== '0.0.0.0';
  const localDirection: Direction = remoteSends
    ? remoteReceives ? 'sendrecv' : 'recvonly'
    : remoteReceives ? 'sendonly' : 'inactive';

  const offeredPtime = Number(m.ptime ?? (offer as { ptime?: unknown }).ptime);
  const ptime = Number.isInteger(offeredPtime) && offeredPtime >= 10 && offeredPtime <= 200 ? offeredPtime : ANSWER_PTIME;

  const audio: NegotiatedAudio = {
    codec: codec.name,
    payloadType: codec.pt,
    clockRate: 8000,
    remoteAddress: address,
    remotePort: port,
    remoteDirection,
    localDirection,
    ptime,
    onHold: !remoteReceives,
  };
  const media: MediaDescription = {
    type: 'audio',
    port: opts.localPort,
    protocol: 'RTP/AVP',
    payloads: String(codec.pt),
    rtp: [{ payload: codec.pt, codec: codec.name, rate: 8000 }],
    fmtp: [],
    ptime: ANSWER_PTIME,
    direction: localDirection,
  };
  if (sdes) {
    const localKeySalt = opts.localKeySalt ?? randomBytes(30);
    audio.srtp = { suite: SDES_SUITE, localKeySalt, remoteKeySalt: sdes.remoteKeySalt, tag: sdes.tag };
    media.protocol = 'RTP/SAVP';
    media.crypto = [{ id: sdes.tag, suite: SDES_SUITE, config: `inline:${localKeySalt.toString('base64')}` }];
  }
  if (tePt !== undefined) {
    audio.telephoneEventPayloadType = tePt;
    media.payloads = `${codec.pt} ${tePt}`;
    media.rtp.push({ payload: tePt, codec: 'telephone-event', rate: 8000 });
    media.fmtp.push({ payload: tePt, config: '0-16' });
  }
  return { audio, media };
}

/**
 * The first a=crypto line we can use (RFC 4568 §6.1: the answerer picks one and echoes its tag):
 * AES_CM_128_HMAC_SHA1_80, one inline key of exactly 30 bytes, no MKI, no session parameters
 * (UNENCRYPTED_SRTP and friends would weaken or change the transform).
 */
function chooseCrypto(m: MediaDescription): { tag: number; remoteKeySalt: Buffer } | null {
  for (const c of (m.crypto ?? []).slice(0, MAX_CRYPTO_LINES)) {
    const tag = Number(c.id);
    if (!Number.isInteger(tag) || tag < 0 || tag > 999_999_999) continue;
    if (String(c.suite).toUpperCase() !== SDES_SUITE || c.sessionConfig) continue;
    const params = String(c.config ?? '').split(';');
    if (params.length !== 1) continue; // more than one key: MKI-based re-keying we do not do
    const km = /^inline:([A-Za-z0-9+/]{40})(?:\|(?:2\^)?\d{1,20})?$/.exec(params[0].trim());
    if (!km) continue;
    const keySalt = Buffer.from(km[1], 'base64');
    if (keySalt.length !== 30) continue;
    return { tag, remoteKeySalt: keySalt };
  }
  return null;
}

/** RFC 3264 §6: a declined stream keeps its media type and formats, with port 0. */
function rejected(m: MediaDescription): MediaDescription {
  const formats = formatList(m);
  return {
    type: m.type,
    port: 0,
    protocol: m.protocol || 'RTP/AVP',
    payloads: formats.length > 0 ? formats.join(' ') : '0',
    rtp: [],
    fmtp: [],
  };
}

/** The m-line format tokens; sdp-transform gives a number for a single numeric format. */
function formatList(m: MediaDescription): string[] {
  // Only plain tokens are echoed back, so nothing from the offer can inject SDP lines.
  return String(m.payloads ?? '')
    .split(/\s+/)
    .filter((t) => /^[\w.*-]{1,64}$/.test(t))
    .slice(0, 64);
}

function toDirection(v: unknown): Direction | undefined {
  return DIRECTIONS.find((d) => d === v);
}

function sessionSkeleton(opts: AnswerOptions, media: MediaDescription[]): SessionDescription {
  const session: SessionDescription = {
    version: 0,
    origin: {
      username: 'ccedge',
      sessionId: opts.sessionId,
      sessionVersion: opts.sessionVersion,
      netType: 'IN',
      ipVer: 4,
      address: opts.localAddress,
    },
    name: 'ccedge',
    connection: { version: 4, ip: opts.localAddress },
    timing: { start: 0, stop: 0 },
    media,
  };
  const ua = opts.userAgent?.replace(/[^\x20-\x7e]/g, '').trim();
  if (ua) {
    // RFC 4566 a=tool; sdp-transform has no named field for it, its verbatim list writes it as is.
    (session as SessionDescription & { invalid?: Array<{ value: string }> }).invalid = [{ value: `tool:${ua}` }];
  }
  return session;
}
