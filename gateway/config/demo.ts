/**
 * The embedded configuration `npm start` runs on when no config file is given: one trunk that
 * accepts the local PBX on 127.0.0.1 only, one queue `support`, agents alice and bob and the
 * supervisor sue, whose password is CCEDGE_DEMO_PASSWORD (`demo`), applied by the loader.
 */
export function demoConfig(): Record<string, unknown> {
  return {
    site: { id: 'site-1' },
    sip: {},
    rtp: {},
    http: {},
    calls: { queue: 'support' },
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMU', 'PCMA'] }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 10 }],
    agents: [
      { name: 'alice', displayName: 'Alice', password: DEMO_PASSWORD_PLACEHOLDER },
      { name: 'bob', displayName: 'Bob', password: DEMO_PASSWORD_PLACEHOLDER },
      { name: 'sue', displayName: 'Sue', role: 'supervisor', password: DEMO_PASSWORD_PLACEHOLDER },
    ],
  };
}

/** Replaced by demo.password (CCEDGE_DEMO_PASSWORD) once the environment is read. */
export const DEMO_PASSWORD_PLACEHOLDER = '\u0000demo-password';
