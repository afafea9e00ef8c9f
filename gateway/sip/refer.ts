import sip, { type SipRequest } from 'sip';
import { CcedgeError } from '../errors';
import { headerString } from './messages';

/**
 * The referrer's side of RFC 3515: what we put in a REFER we send, and how we read the NOTIFYs of
 * the implicit subscription it creates (message/sipfrag bodies, RFC 3420). Pure functions plus the
 * small state of one outstanding REFER; UasDialog sends and answers.
 */

/** A Refer-To / Referred-By URI longer than this is refused (Kamailio's own MAX_URI_SIZE is 1024). */
export const MAX_REFER_URI = 1024;
/** A sipfrag body longer than this is refused: we only read its status line. */
export const MAX_SIPFRAG_BYTES = 4096;
/**
 * How long after sending the REFER the final NOTIFY may take. The PBX rings the target meanwhile,
 * and its own no-answer timeout is typically 30-60 s; after this bound the transfer counts as failed (408).
 */
export const REFER_FINAL_TIMEOUT_MS = 90_000;
/** A REFER nobody answers: sip.js gives 408 after Timer F (32 s); this bounds even a lost stack. */
export const REFER_RESPONSE_TIMEOUT_MS = 34_000;

export interface ReferOptions {
  /** RFC 3892 Referred-By: the URI of who asked for the transfer (an agent, say). */
  referredBy?: string;
  /** Bound for the final NOTIFY, from the moment the REFER is sent (default REFER_FINAL_TIMEOUT_MS). */
  finalTimeoutMs?: number;
}

/**
 * A URI we may put into Refer-To or Referred-By: sip:/sips: that sip.js parses back, or tel:. No
 * characters that could end the name-addr or the header (`<`, `>`, `"`, whitespace, CR/LF).
 */
export function checkReferUri(uri: string, what: 'target' | 'referredBy'): string {
  const bad = (why: string): CcedgeError => new CcedgeError('SIP_BAD_REFER_TARGET', `REFER ${what} ${JSON.stringify(uri.slice(0, 80))}: ${why}`, { what });
  if (uri.length === 0 || uri.length > MAX_REFER_URI) throw bad(`length 1-${MAX_REFER_URI}`);
  if (/[\s<>"]/.test(uri)) throw bad('contains whitespace, <, > or "');
  if (/^tel:\+?[0-9*#A-Fa-f\-.()]{1,64}(;[!-~]{0,512})?$/i.test(uri)) return uri;
  if (!/^sips?:/i.test(uri)) throw bad('not a sip:, sips: or tel: URI');
  if (!sip.parseUri(uri)) throw bad('not a parseable SIP URI');
  return uri;
}

/**
 * Refer-To for a number dialled "through the PBX": the number at the host of the peer's Contact,
 * the PBX's own address, which routes its extensions and outside numbers itself. Behind an SBC
 * with topology hiding that Contact is masked, so `host` (the PBX's domain, e.g. the trunk's
 * outbound host) can be named instead. A number is digits with an optional leading + (and * #),
 * as an agent types it.
 */
export function referTargetForNumber(number: string, remoteTarget: string, host?: string): string {
  if (host !== undefined) return checkReferUri(`sip:${referUser(number)}@${host}`, 'target');
  const user = referUser(number);
  const parsed = sip.parseUri(remoteTarget);
  if (!parsed || !parsed.host) throw new CcedgeError('SIP_BAD_REFER_TARGET', `the dialog's remote target ${remoteTarget.slice(0, 80)} has no host`);
  const hostPart = parsed.host.includes(':') && !parsed.host.startsWith('[') ? `[${parsed.host}]` : parsed.host;
  const scheme = parsed.schema === 'sips' ? 'sips' : 'sip';
  const transport = parsed.params.transport ? `;transport=${parsed.params.transport}` : '';
  return `${scheme}:${user}@${hostPart}${parsed.port ? `:${parsed.port}` : ''}${transport}`;
}

/** The number as the user part of a SIP URI (`#` escaped), or SIP_BAD_REFER_TARGET. */
function referUser(number: string): string {
  if (!/^\+?[0-9*#]{1,32}$/.test(number)) throw new CcedgeError('SIP_BAD_REFER_TARGET', `transfer number ${JSON.stringify(number.slice(0, 40))}: digits, * or # with an optional leading + (1-32)`);
  return encodeURIComponent(number).replace(/%2B/gi, '+');
}

/** What a NOTIFY for our REFER says, or why we answer it with an error. */
export type ReferNotify =
  | { ok: true; status: number; terminated: boolean }
  | { ok: false; status: 400 | 489; detail: string };

/**
 * Reads a NOTIFY of the implicit REFER subscription (RFC 3515 §2.4.4-5, RFC 6665): Event `refer`
 * (its `id`, if any, is the REFER's CSeq), a Subscription-State, and a message/sipfrag body whose
 * first line is a SIP status line.
 */
export function readReferNotify(rq: SipRequest, referCseq: number): ReferNotify {
  const event = headerString(rq, 'event') ?? headerString(rq, 'o');
  if (event === undefined) return { ok: false, status: 400, detail: 'NOTIFY without Event' };
  const [package_, ...eventParams] = event.split(';').map((s) => s.trim());
  if (package_.toLowerCase() !== 'refer') return { ok: false, status: 489, detail: `Event ${package_.slice(0, 40)}` };
  const id = eventParams.map((p) => /^id\s*=\s*(\S+)$/i.exec(p)?.[1]).find((v) => v !== undefined);
  if (id !== undefined && id !== String(referCseq)) return { ok: false, status: 489, detail: `Event refer;id=${id.slice(0, 20)}, ours is ${referCseq}` };

  const state = headerString(rq, 'subscription-state');
  if (state === undefined) return { ok: false, status: 400, detail: 'NOTIFY without Subscription-State' };
  const stateName = state.split(';')[0].trim().toLowerCase();
  if (stateName !== 'active' && stateName !== 'pending' && stateName !== 'terminated') return { ok: false, status: 400, detail: `Subscription-State ${stateName.slice(0, 20)}` };

  const type = (headerString(rq, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'message/sipfrag') return { ok: false, status: 400, detail: `Content-Type ${type.slice(0, 40) || '(none)'}` };
  const status = sipfragStatus(rq.content ?? '');
  if (typeof status === 'string') return { ok: false, status: 400, detail: status };
  return { ok: true, status, terminated: stateName === 'terminated' };
}

/** The status code of a sipfrag's status line (`SIP/2.0 200 OK`), or why there is none. */
export function sipfragStatus(body: string): number | string {
  if (body.length === 0) return 'empty sipfrag';
  if (body.length > MAX_SIPFRAG_BYTES) return `sipfrag of ${body.length} bytes`;
  const line = body.split(/\r?\n/, 1)[0];
  const m = /^SIP\/2\.0 ([1-6][0-9][0-9])(?: [^\r\n]*)?$/.exec(line);
  return m ? Number(m[1]) : `sipfrag status line ${JSON.stringify(line.slice(0, 40))}`;
}

/**
 * One REFER we sent and its implicit subscription. The subscription exists from the moment the
 * REFER is sent (a NOTIFY may overtake the 202, RFC 3515 §2.4.4) until a NOTIFY terminates it, a
 * non-2xx answer refuses it, or the bound runs out.
 */
export class OutgoingRefer {
  /** The referred request's outcome has been reported (sipfrag ≥ 200, terminated, or timeout). */
  finalReported = false;
  /** A non-2xx answer to the REFER or a terminating NOTIFY: NOTIFYs for it now get 481. */
  ended = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly cseq: number,
    finalTimeoutMs: number,
    onTimeout: () => void,
  ) {
    this.timer = setTimeout(onTimeout, finalTimeoutMs);
    this.timer.unref();
  }

  /** Ends the subscription and its timer (idempotent). */
  end(): void {
    this.ended = true;
    clearTimeout(this.timer);
  }
}
