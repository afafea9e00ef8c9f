import type { CallManager } from '../../gateway/calls/call-manager';
import { openSiteCertificates, type SiteCertificates } from '../../gateway/certs/site-certs';
import type { Config } from '../../gateway/config/schema';
import type { Logger } from '../../gateway/logging';
import type { Metrics } from '../../gateway/metrics';
import { SipServer } from '../../gateway/sip/sip-server';
import type { Closer } from '../lifecycle';

export interface SipWiring {
  config: Config;
  log: Logger;
  metrics: Metrics;
  closer: Closer;
  calls: CallManager;
}

/**
 * The site certificates (one store for every TLS listener: SIP over TLS here, HTTPS reuses it), the
 * SIP server (not listening yet: the daemon starts it), and the trunks' outbound leg for
 * forwarded calls.
 */
export async function wireSip(w: SipWiring): Promise<{ certs: SiteCertificates | undefined; sip: SipServer }> {
  const { config, log, closer, calls } = w;
  // One certificate store for every TLS listener (SIP over TLS here; HTTPS reuses it).
  const certs = await openSiteCertificates(config, log.child({ component: 'certs' }));
  if (certs) closer.defer('certificate watch', () => certs.close());
  const sip = new SipServer(config, log, w.metrics, calls, certs);
  closer.defer('sip', () => sip.close());
  // Forwarded calls (routing.forward) place their far leg through a trunk's outbound address.
  calls.placeOutboundWith((trunk, number) => sip.createOutbound(trunk, number));
  return { certs, sip };
}
