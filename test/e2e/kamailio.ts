import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Debian's Kamailio (5.6) as the SBC in front of ccedge: a stateful, record-routing proxy
 * (`record_route` + `loose_route` + `t_relay`), optionally with topology hiding (`topoh`). The
 * test starts it in the foreground on addresses of its own and stops it in after().
 */

export const KAMAILIO_MODULES = '/usr/lib/x86_64-linux-gnu/kamailio/modules';

export interface KamailioOptions {
  /** UDP sockets Kamailio listens on (several: it record-routes twice, RFC 3261 §16.6 step 4). */
  listen: Array<{ ip: string; port: number }>;
  /** Where initial requests from anyone but ccedge go (the appliance). */
  ccedge: { ip: string; port: number };
  /** Where initial requests from ccedge go (the PBX), for outbound calls; optional. */
  pbx?: { ip: string; port: number };
  /** Load `topoh`: Via, Record-Route, Route and Contact are masked on the way through. */
  topoh?: boolean;
}

/** The configuration text (also the minimal SBC config the README shows administrators). */
export function kamailioConfig(o: KamailioOptions): string {
  // With two sockets, the first faces the PBX and the last faces ccedge: initial requests leave on
  // the socket of their side (ccedge's allow-list holds that address); in-dialog requests get
  // theirs from the double Record-Route in loose_route.
  const pbxSide = o.listen[0];
  const ccedgeSide = o.listen[o.listen.length - 1];
  const toCcedge = o.listen.length > 1 ? ` force_send_socket(udp:${ccedgeSide.ip}:${ccedgeSide.port});` : '';
  const toPbx = o.listen.length > 1 ? ` force_send_socket(udp:${pbxSide.ip}:${pbxSide.port});` : '';
  const lines = [
    '#!KAMAILIO',
    'debug=2',
    'log_stderror=yes',
    'memdbg=5',
    'memlog=5',
    'children=1',
    'disable_tcp=yes',
    // No DNS: every address here is a literal, and a test must not look anything up.
    'dns=no',
    'rev_dns=no',
    'auto_aliases=no',
    'use_dns_cache=off',
    ...o.listen.map((l) => `listen=udp:${l.ip}:${l.port}`),
    `mpath="${KAMAILIO_MODULES}/"`,
    'loadmodule "tm.so"',
    'loadmodule "sl.so"',
    'loadmodule "rr.so"',
    'loadmodule "pv.so"',
    'loadmodule "maxfwd.so"',
    'loadmodule "textops.so"',
    'loadmodule "siputils.so"',
    'loadmodule "xlog.so"',
    ...(o.topoh ? ['loadmodule "topoh.so"', 'modparam("topoh", "mask_key", "ccedge-e2e-topoh-key")', 'modparam("topoh", "mask_ip", "10.255.255.254")'] : []),
    // Two Record-Route entries when the request crosses interfaces (PBX side / ccedge side).
    'modparam("rr", "enable_double_rr", 1)',
    'modparam("tm", "fr_timer", 5000)',
    'modparam("tm", "fr_inv_timer", 60000)',
    '',
    'request_route {',
    '  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }',
    '  if (has_totag()) {',
    // In-dialog: only what carries our Route is relayed (this is where a missing route set fails).
    '    if (loose_route()) { xlog("L_INFO", "in-dialog $rm relayed to $ru\\n"); route(RELAY); exit; }',
    '    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }',
    '    xlog("L_WARN", "in-dialog $rm without route set from $si:$sp\\n");',
    '    sl_send_reply("404", "Not here"); exit;',
    '  }',
    '  if (is_method("CANCEL")) { if (t_check_trans()) { route(RELAY); } exit; }',
    '  t_check_trans();',
    '  if (is_method("INVITE|SUBSCRIBE|REFER")) { record_route(); }',
    o.pbx
      ? `  if ($si == "${o.ccedge.ip}" && $sp == ${o.ccedge.port}) { rewritehostport("${o.pbx.ip}:${o.pbx.port}");${toPbx} } else { rewritehostport("${o.ccedge.ip}:${o.ccedge.port}");${toCcedge} }`
      : `  rewritehostport("${o.ccedge.ip}:${o.ccedge.port}");${toCcedge}`,
    '  route(RELAY);',
    '}',
    '',
    'route[RELAY] {',
    '  if (!t_relay()) { sl_reply_error(); }',
    '  exit;',
    '}',
    '',
  ];
  return lines.join('\n');
}

export interface KamailioHandle {
  proc: ChildProcess;
  /** stderr so far (Kamailio logs there with -E). */
  log(): string;
  stop(): Promise<void>;
}

/** Starts `kamailio -DD -E -f cfg` and resolves once it logs that its workers are up. */
export async function startKamailio(o: KamailioOptions): Promise<KamailioHandle> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ccedge-kamailio-'));
  const cfg = path.join(dir, 'kamailio.cfg');
  writeFileSync(cfg, kamailioConfig(o));
  // -DD: no fork, stay in the foreground; -E: log to stderr; small shared/private memory.
  const proc = spawn('kamailio', ['-DD', '-E', '-f', cfg, '-m', '32', '-M', '4', '-Y', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready: every UDP socket bound (one "SO_RCVBUF is finally" line each), then its workers fork.
  const deadline = Date.now() + 10_000;
  while ((out.match(/SO_RCVBUF is finally/g) ?? []).length < o.listen.length) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      await stop();
      throw new Error(`kamailio exited (${String(proc.exitCode ?? proc.signalCode)}):\n${out.slice(-3000)}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`kamailio did not bind its sockets within 10 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 300));
  if (proc.exitCode !== null) {
    await stop();
    throw new Error(`kamailio exited (${String(proc.exitCode)}):\n${out.slice(-3000)}`);
  }
  return { proc, log: () => out, stop };
}
