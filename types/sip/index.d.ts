// Types for npm `sip` 0.0.6 (kirm/sip.js), which ships none. Only what ccedge uses is described;
// shapes follow sip.js's parser output (headers are lower-cased, compact forms expanded).
declare module 'sip' {
  export interface SipUri {
    schema: string;
    user?: string;
    password?: string;
    host: string;
    port?: number;
    params: Record<string, string | null>;
    headers: Record<string, string>;
  }

  export interface NameAddr {
    name?: string;
    uri: string;
    params: Record<string, string | null | undefined>;
  }

  export interface Via {
    version: string;
    protocol: string;
    host: string;
    port?: number;
    params: Record<string, string | null | undefined | number>;
  }

  export interface CSeq {
    seq: number;
    method: string;
  }

  export interface AuthHeader {
    scheme: string;
    realm?: string;
    nonce?: string;
    opaque?: string;
    username?: string;
    uri?: string;
    response?: string;
    algorithm?: string;
    qop?: string;
    nc?: string;
    cnonce?: string;
    [key: string]: string | undefined;
  }

  export interface Headers {
    via: Via[];
    to: NameAddr;
    from: NameAddr;
    'call-id': string;
    cseq: CSeq;
    contact?: NameAddr[] | string;
    route?: NameAddr[];
    'record-route'?: NameAddr[];
    'content-length'?: number;
    'content-type'?: string;
    'max-forwards'?: number | string;
    authorization?: AuthHeader[];
    'www-authenticate'?: AuthHeader[];
    require?: string;
    supported?: string;
    allow?: string;
    // Unknown headers stay strings; some parsers may fail and leave undefined.
    [name: string]: unknown;
  }

  export interface SipRequest {
    method: string;
    uri: string;
    version: string;
    headers: Headers;
    content?: string;
  }

  export interface SipResponse {
    status: number;
    reason: string;
    version: string;
    headers: Headers;
    content?: string;
  }

  export type SipMessage = SipRequest | SipResponse;

  export interface Flow {
    protocol: string;
    address: string;
    port: number;
    local: { address: string; port: number };
  }

  export interface StackOptions {
    address?: string;
    port?: number;
    publicAddress?: string;
    hostname?: string;
    udp?: boolean;
    tcp?: boolean;
    rport?: boolean;
    maxBytesHeaders?: number;
    maxContentLength?: number;
    logger?: {
      send?(m: SipMessage, target: unknown): void;
      recv?(m: SipMessage, remote: Flow): void;
      error?(e: unknown): void;
    };
    /**
     * Replaces sip.js's own transports (added by patches/sip+0.0.6.patch): the factory gets the
     * options and the stack's receive callback and returns the transport the transaction layer uses.
     */
    makeTransport?(options: StackOptions, onMessage: (m: SipMessage, remote: Flow) => void): Transport;
  }

  /** A target the transport can open: a flow (with `local`) or a resolved address. */
  export interface TransportTarget {
    protocol: string;
    address: string;
    port: number;
    local?: { address: string; port: number };
  }

  /** A reference to a connection (UDP: the socket) held by a transaction; release() when done. */
  export interface Connection {
    send(m: SipMessage): void;
    release(): void;
    readonly protocol: string;
  }

  export interface Transport {
    open(target: TransportTarget, onError?: (e: Error) => void): Connection;
    get(target: TransportTarget, onError?: (e: Error) => void): Connection | undefined;
    send(target: TransportTarget, m: SipMessage): void;
    destroy(): void;
  }

  export interface Stack {
    send(m: SipMessage, callback?: (rs: SipResponse) => void): void;
    encodeFlowUri(flow: Flow): SipUri;
    decodeFlowUri(uri: string | SipUri): Flow | undefined;
    hostname(): string;
    destroy(): void;
  }

  export function create(options: StackOptions, callback: (rq: SipRequest, remote: Flow) => void): Stack;
  export function makeResponse(
    rq: SipRequest,
    status: number,
    reason?: string,
    extension?: { headers?: Record<string, unknown>; content?: string },
  ): SipResponse;
  export function parse(data: Buffer | string): SipMessage | undefined;
  export function parseUri(s: string | SipUri): SipUri | undefined;
  export function stringifyUri(uri: SipUri | string): string;
  export function stringify(m: SipMessage): string;
  export function generateBranch(): string;
}

declare module 'sip/digest' {
  export function calculateUserRealmPasswordHash(user: string, realm: string, password: string): string;
  export function calculateDigest(ctx: {
    ha1: string;
    method: string;
    nonce: string;
    nc?: string;
    cnonce?: string;
    qop?: string;
    uri: string;
    entity?: string;
  }): string;
  export function generateNonce(tag: string, timestamp?: Date): string;
  /** The nonce's issue time when `tag` produced it, otherwise a falsy value. */
  export function extractNonceTimestamp(nonce: string, tag: string): Date | false | undefined;
}
