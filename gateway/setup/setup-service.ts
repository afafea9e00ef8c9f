/**
 * The HTTPS /setup page: the installer, on a laptop on the site network, proves the box with its
 * claim code (from provisioning, keys/claim.json) and sets the trunk peers, the first queue and the
 * first agents, writing the config exactly as `ccedge provision` does (first-run.ts). The answer
 * shows each agent's one-time password once. Then setup is closed (410) for good.
 *
 * Every POST is counted against its address and against all addresses together BEFORE the code
 * is compared, and once setup is done every request counts: a guesser is blocked (429) with
 * growing blocks, and rejections are logged through a LogLimiter (a flood is a summary line).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { ScryptParams } from '../acd/password';
import { CcedgeError } from '../errors';
import { LogLimiter } from '../log-limiter';
import type { Logger } from '../logging';
import { FailureGuard } from '../net/failure-guard';
import { failureGuardOptions } from '../net/limits-config';
import type { SetupConfig } from './config';
import { applyFirstRun, firstRunSchema, isSetupDone, markSetupDone, readConfigDoc, writeConfigDoc, type OneTimePassword } from './first-run';

export interface SetupRequest {
  method: string;
  /** Content-Type without parameters, lower case. */
  contentType: string;
  body: Buffer | undefined;
  remote: string;
  /** The client asked for JSON (Accept), or sent JSON. */
  wantsJson: boolean;
}

export interface SetupResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const setupBody = z
  .object({
    claimCode: z.string().max(64),
    trunkPeers: z.array(z.string().max(64)).max(100).optional(),
    queue: z.string().max(64),
    agents: z.array(z.union([z.string().max(200), z.record(z.string(), z.unknown())])).max(200),
  })
  .strict();

const GLOBAL_KEY = '*';

export class SetupService {
  private readonly byAddress: FailureGuard;
  private readonly total: FailureGuard;
  private readonly limitedLog: LogLimiter;
  private readonly flushTimer: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly o: {
      configFile: string;
      dataDir: string;
      config: SetupConfig;
      log: Logger;
      /** Called once the new config is written (the daemon restarts into it). */
      onDone: () => void;
      scrypt?: ScryptParams;
      now?: () => number;
    },
  ) {
    this.byAddress = new FailureGuard({ ...failureGuardOptions(o.config.attemptsPerAddress), now: o.now });
    this.total = new FailureGuard({ ...failureGuardOptions(o.config.attemptsTotal), now: o.now });
    this.limitedLog = new LogLimiter(o.log, { burst: o.config.log.burst, intervalMs: o.config.log.intervalS * 1000 });
    this.flushTimer = setInterval(() => this.limitedLog.flush(), Math.min(10_000, o.config.log.intervalS * 1000));
    this.flushTimer.unref();
  }

  /** Setup can still be done (a claim code exists and setup has not been done). */
  get open(): boolean {
    return !isSetupDone(this.o.dataDir) && this.claimCode() !== undefined;
  }

  close(): void {
    clearInterval(this.flushTimer);
    this.limitedLog.flush(true);
  }

  async handle(req: SetupRequest): Promise<SetupResponse> {
    const blocked = Math.max(this.byAddress.blockedFor(req.remote), this.total.blockedFor(GLOBAL_KEY));
    if (blocked > 0) {
      const retryAfterS = Math.max(1, Math.ceil(blocked / 1000));
      this.limitedLog.warn('setup-throttled', { code: 'SETUP_REFUSED', remote: req.remote, reason: 'throttled' }, 'setup attempt refused: too many attempts');
      return this.answer(req, 429, 'Too many attempts', `Too many setup attempts; try again in ${retryAfterS} s.`, { 'retry-after': String(retryAfterS) });
    }
    if (isSetupDone(this.o.dataDir)) {
      // Closed for good: whoever still knocks is counted like a guesser.
      this.count(req.remote);
      this.limitedLog.warn('setup-closed', { code: 'SETUP_REFUSED', remote: req.remote, reason: 'done' }, 'setup attempt after setup was done');
      return this.answer(req, 410, 'Setup is done', 'This box is set up. Agents and queues are changed by the administrator now, not here.');
    }
    const claim = this.claimCode();
    if (claim === undefined) {
      return this.answer(req, 404, 'Not provisioned', 'This box has no claim code yet: run ccedge provision on it first.');
    }
    if (req.method === 'GET' || req.method === 'HEAD') return { status: 200, headers: htmlHeaders(), body: req.method === 'HEAD' ? '' : setupForm() };
    if (req.method !== 'POST') return this.answer(req, 405, 'Method not allowed', 'Use GET or POST.', { allow: 'GET, HEAD, POST' });
    const parsed = parseBody(req);
    if (!parsed.ok) return this.answer(req, 400, 'Bad request', parsed.error);
    // Counted before the comparison, cleared only by the right code.
    this.count(req.remote);
    if (!sameCode(parsed.value.claimCode, claim)) {
      this.limitedLog.warn('setup-wrong-code', { code: 'SETUP_REFUSED', remote: req.remote, reason: 'wrong_claim_code' }, 'setup attempt with a wrong claim code');
      return this.answer(req, 403, 'Wrong claim code', 'The claim code is not this box\'s. It is on the work order (the same one given to ccedge provision).');
    }
    this.byAddress.succeed(req.remote);
    this.total.refund(GLOBAL_KEY);
    const input = firstRunSchema.safeParse({ trunkPeers: parsed.value.trunkPeers, queue: parsed.value.queue, agents: parsed.value.agents });
    if (!input.success) {
      return this.answer(req, 400, 'Check the settings', input.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; '));
    }
    if (input.data.agents.length === 0) return this.answer(req, 400, 'Check the settings', 'add at least one agent');
    if (this.busy) return this.answer(req, 409, 'Setup is running', 'Another setup request is being applied.');
    this.busy = true;
    let passwords: OneTimePassword[];
    try {
      const { doc, passwords: p } = await applyFirstRun(readConfigDoc(this.o.configFile), input.data, this.o.scrypt);
      writeConfigDoc(this.o.configFile, doc, `written by ccedge /setup on ${new Date().toISOString()} (from ${req.remote})`);
      markSetupDone(this.o.dataDir, 'setup', p.map((x) => x.agent));
      passwords = p;
    } catch (e) {
      if (e instanceof CcedgeError && (e.code === 'SETUP_REFUSED' || e.code === 'CONFIG_INVALID')) return this.answer(req, 400, 'Check the settings', e.message);
      throw e;
    } finally {
      this.busy = false;
    }
    this.o.log.info({ remote: req.remote, queue: input.data.queue, agents: passwords.map((p) => p.agent), trunkPeers: input.data.trunkPeers ?? null }, 'first-run setup done through /setup; restarting into the new configuration');
    this.o.onDone();
    if (req.wantsJson) return { status: 200, headers: jsonHeaders(), body: JSON.stringify({ queue: input.data.queue, agents: passwords, restarting: true }) };
    return { status: 200, headers: htmlHeaders(), body: donePage(input.data.queue, passwords) };
  }

  private count(remote: string): void {
    this.byAddress.fail(remote);
    this.total.fail(GLOBAL_KEY);
  }

  private claimCode(): string | undefined {
    try {
      const c = (JSON.parse(readFileSync(path.join(this.o.dataDir, 'keys', 'claim.json'), 'utf8')) as { claimCode?: unknown }).claimCode;
      return typeof c === 'string' && c.length > 0 ? c : undefined;
    } catch {
      return undefined;
    }
  }

  private answer(req: SetupRequest, status: number, title: string, message: string, headers: Record<string, string> = {}): SetupResponse {
    if (req.wantsJson) return { status, headers: { ...jsonHeaders(), ...headers }, body: JSON.stringify({ error: { code: status === 429 || status === 410 || status === 403 ? 'SETUP_REFUSED' : 'HTTP_BAD_REQUEST', message } }) };
    return { status, headers: { ...htmlHeaders(), ...headers }, body: page(title, `<p>${esc(message)}</p><p><a href="/">Back to the start page</a></p>`) };
  }
}

function sameCode(given: string, expected: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s.trim().toUpperCase()).digest();
  return timingSafeEqual(h(given), h(expected));
}

function parseBody(req: SetupRequest): { ok: true; value: z.infer<typeof setupBody> } | { ok: false; error: string } {
  const text = req.body?.toString('utf8') ?? '';
  let raw: unknown;
  if (req.contentType === 'application/json') {
    try {
      raw = JSON.parse(text);
    } catch {
      return { ok: false, error: 'the body is not valid JSON' };
    }
  } else if (req.contentType === 'application/x-www-form-urlencoded') {
    const f = new URLSearchParams(text);
    const peers = (f.get('trunkPeers') ?? '').split(/[\s,]+/).filter(Boolean);
    raw = {
      claimCode: f.get('claimCode') ?? '',
      queue: (f.get('queue') ?? '').trim(),
      agents: (f.get('agents') ?? '').split(/\r?\n/).map((l) => l.trim()).filter(Boolean),
      ...(peers.length ? { trunkPeers: peers } : {}),
    };
  } else {
    return { ok: false, error: 'send the setup form (application/x-www-form-urlencoded) or JSON' };
  }
  const r = setupBody.safeParse(raw);
  if (!r.success) return { ok: false, error: `expected claimCode, queue, agents and optionally trunkPeers (${r.error.issues[0]?.path.join('.') ?? ''}: ${r.error.issues[0]?.message ?? ''})` };
  return { ok: true, value: r.data };
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function htmlHeaders(): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  };
}

function jsonHeaders(): Record<string, string> {
  return { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)} — ccedge setup</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.45}label{display:block;font-weight:600;margin-top:1rem}input,textarea{font:inherit;width:100%;box-sizing:border-box;padding:.4rem}button{margin-top:1.2rem;font:inherit;padding:.5rem 1rem}code{font-size:1.1em}td{padding:.2rem .8rem .2rem 0}</style></head>
<body>
<h1>${esc(title)}</h1>
${body}
</body>
</html>
`;
}

function setupForm(): string {
  return page(
    'Set up this box',
    `<p>Enter the claim code from the work order, the PBX addresses, a first queue and the first agents.
Each agent gets a one-time password, shown once on the next page; the agent chooses a new one at first login.</p>
<form method="post" action="/setup">
<label for="claimCode">Claim code</label><input id="claimCode" name="claimCode" required autocomplete="off" placeholder="ABCD-2345-WXYZ">
<label for="trunkPeers">Trunk peers (PBX addresses, comma separated; empty keeps the provisioned ones)</label><input id="trunkPeers" name="trunkPeers" placeholder="10.0.0.5">
<label for="queue">First queue</label><input id="queue" name="queue" required value="support">
<label for="agents">Agents, one a line: name or name:Display Name</label><textarea id="agents" name="agents" rows="6" required placeholder="alice:Alice Martin"></textarea>
<button type="submit">Set up</button>
</form>`,
  );
}

function donePage(queue: string, passwords: readonly OneTimePassword[]): string {
  const rows = passwords.map((p) => `<tr><td>${esc(p.agent)}</td><td><code>${esc(p.password)}</code></td></tr>`).join('');
  return page(
    'Setup done',
    `<p>Calls now join queue <b>${esc(queue)}</b>. The box restarts to run the new settings (a few seconds).</p>
<p><b>Write these one-time passwords down now: they are shown only this once.</b> Each agent logs in on the
<a href="/agent">agent page</a> with it and then chooses a new password.</p>
<table><tr><th>Agent</th><th>One-time password</th></tr>${rows}</table>`,
  );
}
