/**
 * The embedded configuration `npm start` runs on when no config file is given: one trunk that
 * accepts the local PBX on 127.0.0.1 only. Later issues add the demo queue and agents here.
 */
export function demoConfig(): Record<string, unknown> {
  return {
    site: { id: 'site-1' },
    sip: {},
    rtp: {},
    http: {},
    calls: {},
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMU', 'PCMA'] }],
  };
}
