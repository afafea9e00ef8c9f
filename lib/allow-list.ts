import { BlockList, isIP } from 'node:net';

/**
 * Compiles an allow-list of address literals and CIDRs (as the config validated them) once;
 * node's BlockList does the matching. Shared by the SIP gate, the trial watch and the RTP
 * sessions' latch check, on the main thread and on media workers.
 */
export function compileAllowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return list;
}
