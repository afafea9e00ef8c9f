import type { Config } from '../../gateway/config/schema';
import { siteIPv4Addresses } from '../../gateway/net/addresses';

/** Host-candidate addresses for agent legs: configured, else the site's IPv4 addresses. */
export function webrtcInterfaces(config: Config): string[] {
  if (config.webrtc.interfaces) return config.webrtc.interfaces;
  const site = siteIPv4Addresses();
  return site.length ? site : ['127.0.0.1'];
}
