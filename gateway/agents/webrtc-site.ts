import { webrtcLeg, type MediaWorker, type WebRtcEndpoint } from '../../media';
import type { Logger } from '../logging';

/** Where agents' and supervisors' WebRTC legs gather ICE: the site's interfaces and UDP ports. */
export interface WebRtcSite {
  interfaces: string[];
  portRange: { min: number; max: number };
  /** Media worker threads running (each takes its own slice of the ports); 0 or absent: none. */
  workers?: number;
}

/** A new WebRTC leg for `call`, on the call's media worker when its media is on one. */
export function legFor(site: WebRtcSite, call: { codec: 'PCMU' | 'PCMA'; log: Logger; mediaWorker?: MediaWorker }): WebRtcEndpoint {
  return webrtcLeg({ codec: call.codec, interfaces: site.interfaces, portRange: site.portRange, log: call.log }, call.mediaWorker, site.workers ?? 0);
}
