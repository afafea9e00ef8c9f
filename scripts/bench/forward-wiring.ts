/**
 * TEMPORARY preload (`node --require dist/scripts/bench/forward-wiring.js dist/gateway/main.js run`)
 * until gateway/daemon.ts wires forwarded calls itself with
 *   calls.placeOutboundWith((trunk, number) => sip.createOutbound(trunk, number));
 * It wraps Daemon.start and does exactly that, and nothing once the daemon is wired.
 * Used by the relay benchmark and test/e2e/forward.test.ts; delete it after the daemon line lands.
 */
import path from 'node:path';
import { Daemon } from '../../gateway/daemon';
import type { SipServer } from '../../gateway/sip/sip-server';

/** This file's built path, for NODE_OPTIONS=--require. */
export const FORWARD_WIRING = path.join(__dirname, 'forward-wiring.js');

const start = Daemon.start.bind(Daemon);
Daemon.start = async (...args: Parameters<typeof Daemon.start>): Promise<Daemon> => {
  const daemon = await start(...args);
  if (!daemon.calls.outboundWired) {
    const sip = (daemon as unknown as { sip: SipServer }).sip;
    daemon.calls.placeOutboundWith((trunk, number) => sip.createOutbound(trunk, number));
  }
  return daemon;
};
