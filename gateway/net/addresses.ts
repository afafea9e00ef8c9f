import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address === '::ffff:127.0.0.1';
}

/** Non-internal IPv4 addresses of this box, in interface order. */
export function siteIPv4Addresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const nic of list ?? []) if (nic.family === 'IPv4' && !nic.internal) out.push(nic.address);
  }
  return out;
}

/**
 * The address to advertise (Via, Contact, SDP c=) to `peer`: the configured public address,
 * else the bound address, else loopback for a loopback peer, else the first site address.
 */
export function advertisedAddress(opts: { publicAddress?: string; bound: string; peer: string }): string {
  if (opts.publicAddress) return opts.publicAddress;
  if (!isWildcard(opts.bound)) return opts.bound;
  if (isLoopback(opts.peer)) return '127.0.0.1';
  return siteIPv4Addresses()[0] ?? '127.0.0.1';
}

export function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
