import { networkInterfaces } from 'node:os';
import { isIP, isIPv4 } from 'node:net';
import type { RTCPeerConnectionConfig, RTCRtpTransceiver } from 'werift';
import { MediaError } from '../errors';

export interface SiteIceOptions {
  /** IPv4 literals to gather host candidates on; nothing else is advertised. */
  interfaces: string[];
  portRange?: { min: number; max: number };
}

/**
 * werift peer configuration that keeps ICE on the site: host candidates on the given addresses
 * only, no STUN/TURN servers, UDP only, ports from the range.
 *
 * - `iceUseIpv4/iceUseIpv6: false` switch off werift's own os.networkInterfaces() enumeration
 *   (it would add every non-loopback address of the box); `iceAdditionalHostAddresses` then is
 *   the complete list. (werift's `iceInterfaceAddresses` filter is not enough on its own: when no
 *   enumerated address matches, e.g. 127.0.0.1, it silently keeps all of them.)
 * - `iceInterfaceAddresses` is werift's bind address. It holds one IPv4 address, so with one
 *   interface the sockets bind to it; with several they bind to the wildcard address (candidates
 *   are still only the listed addresses).
 * - `iceServers: []` is NOT sufficient to avoid Google's STUN server: see pinIceToSite.
 */
export function siteIceConfig(opts: SiteIceOptions): Partial<RTCPeerConnectionConfig> {
  const { interfaces, portRange } = opts;
  if (!Array.isArray(interfaces) || interfaces.length === 0) {
    throw new MediaError('WEBRTC_FAILED', 'WebRTC needs at least one interface address to gather on');
  }
  for (const a of interfaces) {
    if (!isIPv4(a) || a === '0.0.0.0') {
      throw new MediaError('WEBRTC_FAILED', `WebRTC interface must be a unicast IPv4 literal, got "${a}"`);
    }
  }
  // werift binds without an 'error' listener: an address that is not on this box (renumbered
  // interface, typo in the config) would be an uncaught EADDRNOTAVAIL that takes the daemon down.
  const local = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((i) => i.address)));
  for (const a of interfaces) {
    if (!local.has(a) && !a.startsWith('127.')) {
      throw new MediaError('WEBRTC_FAILED', `WebRTC interface ${a} is not an address of this machine`);
    }
  }
  if (portRange !== undefined) {
    const { min, max } = portRange;
    // werift's findPort rejects min === max, and a port below 1024 would need privileges.
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1024 || max > 65535 || min >= max) {
      throw new MediaError('WEBRTC_FAILED', `invalid WebRTC port range ${min}-${max} (need 1024 <= min < max <= 65535)`);
    }
  }
  const reachable = remoteReachable(interfaces);
  return {
    // Only remote addresses our interfaces should talk to: a browser also offers (and checks
    // from) its other addresses, and answering those would send packets off the site/loopback.
    iceFilterStunResponse: (_msg, addr) => reachable(addr[0]),
    iceFilterCandidatePair: (pair) => reachable(pair.remoteCandidate.host),
    iceServers: [],
    iceTransportPolicy: 'all',
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceUseTcp: false,
    iceUseLinkLocalAddress: false,
    iceAdditionalHostAddresses: [...new Set(interfaces)],
    iceInterfaceAddresses: interfaces.length === 1 ? { udp4: interfaces[0] } : undefined,
    icePortRange: portRange ? [portRange.min, portRange.max] : undefined,
  };
}

/**
 * werift 0.24's ICE Connection falls back to stun.l.google.com:19302 whenever no STUN server is
 * configured (upstream issue #691): gathering then resolves that name (a DNS query leaving the
 * site) and sends it a binding request. The fallback is stored in the connection's public
 * `stunServer` field when the transport is created (addTransceiver) and only read when gathering
 * starts (setLocalDescription), so clearing it in between removes the server-reflexive step
 * entirely: no lookup, no packet. We fail closed if the field is not where we expect it, so a
 * werift upgrade that moves it cannot silently reintroduce the leak.
 */
export function pinIceToSite(transceiver: RTCRtpTransceiver): void {
  const conn = transceiver.dtlsTransport?.iceTransport?.connection;
  if (!conn || !('stunServer' in conn) || conn.localCandidatesEnd || conn.localCandidates.length > 0) {
    throw new MediaError('WEBRTC_FAILED', 'cannot disable werift\'s public STUN fallback (werift internals changed?)');
  }
  conn.stunServer = undefined;
  conn.turnServer = undefined;
}

/**
 * Makes a remote description safe to hand to werift and fits it to our offer:
 * - drops candidates that are not UDP with an IP literal: werift resolves `.local` names with
 *   multicast DNS and any other name with a DNS lookup, both of which leave the box;
 * - moves `preferredPt` to the front of the m=audio format list: werift sends with the first
 *   codec of the answer, so an answer listing telephone-event first would label voice as 101.
 */
export function sanitizeRemoteSdp(sdp: string, preferredPt: number, localInterfaces: string[] = []): { sdp: string; droppedCandidates: number } {
  const reachable = remoteReachable(localInterfaces);
  let droppedCandidates = 0;
  const out: string[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (line === '') continue;
    if (line.startsWith('a=candidate:')) {
      // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
      const f = line.slice('a=candidate:'.length).split(' ');
      if (f.length < 8 || f[2].toLowerCase() !== 'udp' || isIP(f[4]) === 0 || !reachable(f[4])) {
        droppedCandidates++;
        continue;
      }
    } else if (line.startsWith('m=audio ')) {
      const f = line.split(' ');
      const pt = String(preferredPt);
      const i = f.indexOf(pt, 3);
      if (i > 3) {
        f.splice(i, 1);
        f.splice(3, 0, pt);
        out.push(f.join(' '));
        continue;
      }
    }
    out.push(line);
  }
  return { sdp: out.join('\r\n') + '\r\n', droppedCandidates };
}

/**
 * Which remote ICE addresses a leg on `interfaces` may exchange packets with: a leg gathering
 * on loopback only talks to loopback (anything else leaves the box's loopback), a leg on the
 * site network never to loopback; a mix allows both.
 */
export function remoteReachable(interfaces: string[]): (address: string) => boolean {
  const loopbackOnly = interfaces.length > 0 && interfaces.every(isLoopback);
  const noLoopback = interfaces.length > 0 && !interfaces.some(isLoopback);
  return (address) => (loopbackOnly ? isLoopback(address) : noLoopback ? !isLoopback(address) : true);
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}
