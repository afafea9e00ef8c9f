import { BlockList, isIP } from 'node:net';
import type { TrunkConfig } from '../../config/schema';
import { compileAllowList } from '../../config/schema';
import { normaliseAddress } from '../../net/addresses';

export type GateVerdict = 'trunk' | 'self' | 'forbidden';

/**
 * Who may make the SIP stack parse anything: a source in some trunk's allow-list or a trunk's
 * outbound target (responses to our callbacks and forwards), or this process's own watchdog probe
 * (from a local address and carrying the per-process secret). Everything else is dropped before
 * one byte of it is parsed — the parser is the costliest thing an outsider could make us run.
 */
export class SourceGate {
  private readonly allow: BlockList;
  private readonly localAddresses: Set<string>;

  constructor(
    trunks: readonly TrunkConfig[],
    private readonly selfCheckSecret: Buffer,
    listenHost: string,
  ) {
    this.allow = compileAllowList(trunks.flatMap((t) => [...t.allow, ...(t.outbound ? [t.outbound.host] : [])]));
    this.localAddresses = new Set(['127.0.0.1', '::1', normaliseAddress(listenHost)]);
  }

  /** For a datagram: the bytes are only searched for the secret (linear), never parsed. */
  checkDatagram(address: string, data: Buffer): GateVerdict {
    const peer = normaliseAddress(address);
    if (this.admits(peer)) return 'trunk';
    if (this.localAddresses.has(peer) && data.includes(this.selfCheckSecret)) return 'self';
    return 'forbidden';
  }

  /** For a stream: the connection is refused at accept unless its source is a trunk's. */
  checkConnection(address: string): GateVerdict {
    const peer = normaliseAddress(address);
    return this.admits(peer) ? 'trunk' : 'forbidden';
  }

  private admits(peer: string): boolean {
    const family = isIP(peer);
    if (family === 0) return false;
    return this.allow.check(peer, family === 6 ? 'ipv6' : 'ipv4');
  }
}
