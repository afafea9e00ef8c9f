/**
 * `ccedge agents …` and `ccedge queues add|list|set|remove`: the running daemon is changed through
 * its admin API (it applies the change while calls run); when no daemon answers on the config's
 * HTTP port, the change is made offline in the data dir's database (people_live), checked the same
 * way, and the daemon runs it at its next start.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../gateway/config/load';
import { CcedgeError } from '../../gateway/errors';
import { Db } from '../../gateway/store/db';
import { agentsFromCsv } from '../../gateway/people/csv';
import { addAgents, addQueue, precheckAgent, publicAgent, removeAgent, removeQueue, setAgent, setQueue, type People } from '../../gateway/people/people-edit';
import { checkWithConfig, hashClearPasswords, peopleOf } from '../../gateway/people/people-service';
import { PeopleStore } from '../../gateway/people/people-store';
import { daemonRequest } from '../../gateway/people/daemon-client';

type Config = ReturnType<typeof loadConfig>['config'];

export const AGENTS_USAGE = `usage: ccedge agents add|list|set|remove|import [options] [--config FILE]

  agents list [--json]                 agents (config fields, and live state when the daemon runs)
  agents add NAME [--display-name T] [--password P | --password-hash H] [--queues A,B]
             [--skills S=80,T=50] [--role agent|supervisor] [--must-change-password]
                                       without a password the agent gets a one-time password,
                                       printed once, to replace at first login
  agents set NAME [the same options; --queues all = every queue]
  agents remove NAME                   an agent on a call is removed when the call ends
  agents import FILE.csv               header row (name,displayName,password,queues,skills,role,
                                       mustChangePassword); queues "a;b", skills "s=80;t=50";
                                       every error is reported with its line; all or nothing

The running daemon is changed through its admin API (live, while calls run); without a running
daemon the change is saved in the data dir's database and used at the next start.`;

export const QUEUES_USAGE = `usage: ccedge queues [list|add|set|remove] [options] [--config FILE]

  queues [--json]                      live queue KPIs from the running daemon
  queues list [--json]                 queues (config fields)
  queues add NAME [--ring-timeout-s N] [--wrap-up-s N] [--strategy longest-idle|skills-best-match|round-robin]
             [--max-wait-s N --overflow-queue Q] [--max-size N] [--required-skills S=50,T=20]
  queues set NAME [the same options]
  queues remove NAME [--move-to Q]     waiting callers go to Q, else the queue's overflow queue,
                                       else people.fallbackQueue, else their calls end

Changed live through the running daemon's admin API, or offline in the database (see agents).`;

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
}

function levels(v: string | undefined, what: string): Record<string, number> | undefined {
  if (v === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const part of list(v) ?? []) {
    const m = /^([^=]+)=(\d{1,3})$/.exec(part);
    if (!m) throw new CcedgeError('CLI_USAGE', `${what}: "${part}" is not name=level`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

function int(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,6}$/.test(v)) throw new CcedgeError('CLI_USAGE', `${what} must be a whole number`);
  return Number(v);
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Offline: the people in the data dir's database (or the file's), changed and saved there. */
async function offline<T>(config: Config, edit: (p: People) => Promise<{ people: People } & T> | ({ people: People } & T)): Promise<T> {
  const dbFile = path.join(config.dataDir, 'ccedge.db');
  if (!existsSync(config.dataDir)) throw new CcedgeError('CLI_NO_DATA_DIR', `no data directory ${config.dataDir} (start the daemon once, or pass --config)`);
  const db = await Db.open(dbFile);
  try {
    const store = new PeopleStore(db);
    const stored = await store.get();
    let base = stored?.people ?? peopleOf(config);
    base = { ...base, agents: await hashClearPasswords(base.agents) };
    const out = await edit(base);
    checkWithConfig(config, out.people);
    await store.save(out.people, 'cli');
    return out;
  } finally {
    await db.close();
  }
}

async function read(config: Config): Promise<People> {
  if (!existsSync(path.join(config.dataDir, 'ccedge.db'))) return peopleOf(config);
  const db = await Db.open(path.join(config.dataDir, 'ccedge.db'));
  try {
    return (await new PeopleStore(db).get())?.people ?? peopleOf(config);
  } finally {
    await db.close();
  }
}

function fail(status: number, body: unknown): never {
  const e = (body as { error?: { code?: string; message?: string } }).error;
  throw new CcedgeError(e?.code === 'PEOPLE_NOT_FOUND' || e?.code === 'PEOPLE_EXISTS' || e?.code === 'PEOPLE_IN_USE' || e?.code === 'PEOPLE_INVALID' ? e.code : 'CLI_USAGE', `${e?.message ?? `HTTP ${status}`}`);
}

function printPasswords(codes: Array<{ agent: string; password: string }>): void {
  if (codes.length === 0) return;
  process.stdout.write('one-time passwords (shown only now; each agent chooses a new password at first login):\n');
  for (const c of codes) process.stdout.write(`  ${c.agent}  ${c.password}\n`);
}

export async function agentsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      'display-name': { type: 'string' },
      password: { type: 'string' },
      'password-hash': { type: 'string' },
      queues: { type: 'string' },
      skills: { type: 'string' },
      role: { type: 'string' },
      'must-change-password': { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, name, ...extra] = positionals;
  if (!['list', 'add', 'set', 'remove', 'import'].includes(sub ?? '') || extra.length > 0) throw new CcedgeError('CLI_USAGE', AGENTS_USAGE);
  if (sub !== 'list' && !name) throw new CcedgeError('CLI_USAGE', `ccedge agents ${sub as string} needs ${sub === 'import' ? 'FILE.csv' : 'NAME'}\n\n${AGENTS_USAGE}`);
  const { config } = loadConfig({ file: values.config });
  const fields = defined({
    displayName: values['display-name'],
    password: values.password,
    passwordHash: values['password-hash'],
    queues: values.queues === 'all' ? (sub === 'set' ? null : undefined) : list(values.queues),
    skills: levels(values.skills, '--skills'),
    role: values.role,
    mustChangePassword: values['must-change-password'],
  });
  if (sub === 'list') {
    const r = await daemonRequest<{ agents: Array<Record<string, unknown>> }>(config, 'GET', '/api/v1/agents');
    const agents: Array<Record<string, unknown>> = r ? (r.status === 200 ? r.body.agents : fail(r.status, r.body)) : (await read(config)).agents.map(publicAgent);
    if (values.json) process.stdout.write(`${JSON.stringify(agents, null, 2)}\n`);
    else
      process.stdout.write(
        agents.map((a) => `${String(a.name).padEnd(16)} ${String(a.role ?? 'agent').padEnd(10)} queues ${a.queues ? (a.queues as string[]).join(',') : 'all'}${a.state ? `  ${String(a.state)}` : ''}${a.mustChangePassword ? '  (one-time password)' : ''}\n`).join('') || 'no agents\n',
      );
    return 0;
  }
  if (sub === 'import') {
    let text: string;
    try {
      text = readFileSync(name as string, 'utf8');
    } catch (e) {
      throw new CcedgeError('CLI_USAGE', `cannot read ${name as string}: ${(e as Error).message}`);
    }
    const csv = agentsFromCsv(text);
    const seen = new Map<string, number>();
    for (const { line, agent } of csv.agents) {
      try {
        precheckAgent(agent, 'agent');
      } catch (e) {
        csv.errors.push(`line ${line}: ${(e as Error).message.replace(/^agent\.?/, '')}`);
      }
      const n = String(agent.name);
      if (seen.has(n)) csv.errors.push(`line ${line}: agent "${n}" is also on line ${String(seen.get(n))}`);
      seen.set(n, line);
    }
    if (csv.agents.length === 0 && csv.errors.length === 0) csv.errors.push('no agents in the file');
    if (csv.errors.length) {
      for (const e of csv.errors) process.stderr.write(`${name as string}: ${e}\n`);
      process.stderr.write(`ccedge: nothing imported (${csv.errors.length} problem${csv.errors.length === 1 ? '' : 's'})\n`);
      return 1;
    }
    const bodies = csv.agents.map((a) => a.agent);
    const byLine = (msg: string): string => msg.replace(/agents\.(\d+)/g, (m, i: string) => (csv.agents[Number(i)] ? `line ${csv.agents[Number(i)].line}` : m));
    const r = await daemonRequest<{ agents: unknown[]; oneTimePasswords: Array<{ agent: string; password: string }> }>(config, 'POST', '/api/v1/agents', bodies);
    let codes: Array<{ agent: string; password: string }>;
    if (r) {
      if (r.status !== 201) {
        const e = (r.body as unknown as { error?: { message?: string } }).error;
        process.stderr.write(`${name as string}: ${byLine(e?.message ?? `HTTP ${r.status}`)}\nccedge: nothing imported\n`);
        return 1;
      }
      codes = r.body.oneTimePasswords;
    } else {
      try {
        codes = (await offline(config, (p) => addAgents(p, bodies))).oneTimePasswords;
      } catch (e) {
        if (!(e instanceof CcedgeError)) throw e;
        process.stderr.write(`${name as string}: ${byLine(e.message)}\nccedge: nothing imported\n`);
        return 1;
      }
    }
    process.stdout.write(`imported ${bodies.length} agent${bodies.length === 1 ? '' : 's'}${r ? ' (live)' : ' (offline: used at the next start)'}\n`);
    printPasswords(codes);
    return 0;
  }
  const agentName = name as string;
  if (sub === 'add') {
    const body = { name: agentName, ...fields };
    const r = await daemonRequest<{ agent: unknown; oneTimePassword?: string }>(config, 'POST', '/api/v1/agents', body);
    const code = r ? (r.status === 201 ? r.body.oneTimePassword : fail(r.status, r.body)) : (await offline(config, (p) => addAgents(p, [body]))).oneTimePasswords[0]?.password;
    process.stdout.write(`agent ${agentName} added${r ? ' (live)' : ' (offline: used at the next start)'}\n`);
    printPasswords(code ? [{ agent: agentName, password: code }] : []);
    return 0;
  }
  if (sub === 'set') {
    if (Object.keys(fields).length === 0) throw new CcedgeError('CLI_USAGE', `nothing to change\n\n${AGENTS_USAGE}`);
    const r = await daemonRequest(config, 'PATCH', `/api/v1/agents/${encodeURIComponent(agentName)}`, fields);
    if (r && r.status !== 200) fail(r.status, r.body);
    if (!r) await offline(config, (p) => setAgent(p, agentName, fields));
    process.stdout.write(`agent ${agentName} changed${r ? ' (live)' : ' (offline: used at the next start)'}\n`);
    return 0;
  }
  const r = await daemonRequest<{ afterCall?: boolean }>(config, 'DELETE', `/api/v1/agents/${encodeURIComponent(agentName)}`);
  if (r && r.status !== 200) fail(r.status, r.body);
  if (!r) await offline(config, (p) => ({ people: removeAgent(p, agentName) }));
  process.stdout.write(`agent ${agentName} removed${r?.body.afterCall ? ' (on a call: when it ends)' : ''}${r ? '' : ' (offline: used at the next start)'}\n`);
  return 0;
}

/** `ccedge queues list|add|set|remove` (bare `ccedge queues` is the KPI list, in cli.ts). */
export async function queuesChangeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      'ring-timeout-s': { type: 'string' },
      'wrap-up-s': { type: 'string' },
      strategy: { type: 'string' },
      'max-wait-s': { type: 'string' },
      'overflow-queue': { type: 'string' },
      'max-size': { type: 'string' },
      'required-skills': { type: 'string' },
      'move-to': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, name, ...extra] = positionals;
  if (!['list', 'add', 'set', 'remove'].includes(sub ?? '') || extra.length > 0) throw new CcedgeError('CLI_USAGE', QUEUES_USAGE);
  if (sub !== 'list' && !name) throw new CcedgeError('CLI_USAGE', `ccedge queues ${sub as string} needs NAME\n\n${QUEUES_USAGE}`);
  const { config } = loadConfig({ file: values.config });
  if (sub === 'list') {
    const r = await daemonRequest<{ queues: Array<Record<string, unknown>> }>(config, 'GET', '/api/v1/queues');
    const queues = r ? (r.status === 200 ? r.body.queues : fail(r.status, r.body)) : (await read(config)).queues;
    if (values.json) process.stdout.write(`${JSON.stringify(queues, null, 2)}\n`);
    else process.stdout.write(queues.map((q) => `${String(q.name).padEnd(16)} ring ${String(q.ringTimeoutS)} s  wrap-up ${String(q.wrapUpS)} s  ${String(q.strategy ?? 'longest-idle')}\n`).join('') || 'no queues\n');
    return 0;
  }
  const queueName = name as string;
  const fields = defined({
    ringTimeoutS: int(values['ring-timeout-s'], '--ring-timeout-s'),
    wrapUpS: int(values['wrap-up-s'], '--wrap-up-s'),
    strategy: values.strategy,
    maxWaitS: int(values['max-wait-s'], '--max-wait-s'),
    overflow: values['overflow-queue'] !== undefined ? { queue: values['overflow-queue'] } : undefined,
    maxSize: int(values['max-size'], '--max-size'),
    requiredSkills: levels(values['required-skills'], '--required-skills'),
  });
  if (sub === 'add') {
    const body = { name: queueName, ...fields };
    const r = await daemonRequest(config, 'POST', '/api/v1/queues', body);
    if (r && r.status !== 201) fail(r.status, r.body);
    if (!r) await offline(config, (p) => addQueue(p, body));
    process.stdout.write(`queue ${queueName} added${r ? ' (live)' : ' (offline: used at the next start)'}\n`);
    return 0;
  }
  if (sub === 'set') {
    if (Object.keys(fields).length === 0) throw new CcedgeError('CLI_USAGE', `nothing to change\n\n${QUEUES_USAGE}`);
    const r = await daemonRequest(config, 'PATCH', `/api/v1/queues/${encodeURIComponent(queueName)}`, fields);
    if (r && r.status !== 200) fail(r.status, r.body);
    if (!r) await offline(config, (p) => setQueue(p, queueName, fields));
    process.stdout.write(`queue ${queueName} changed${r ? ' (live)' : ' (offline: used at the next start)'}\n`);
    return 0;
  }
  const moveTo = values['move-to'];
  const r = await daemonRequest<{ calls: Array<{ callId: string; to: string | null }> }>(config, 'DELETE', `/api/v1/queues/${encodeURIComponent(queueName)}${moveTo ? `?moveTo=${encodeURIComponent(moveTo)}` : ''}`);
  if (r && r.status !== 200) fail(r.status, r.body);
  if (!r) await offline(config, (p) => ({ people: removeQueue(p, queueName) }));
  const calls = r?.body.calls ?? [];
  process.stdout.write(`queue ${queueName} removed${r ? '' : ' (offline: used at the next start)'}${calls.length ? `; ${calls.length} waiting call(s): ${calls.map((c) => `${c.callId} → ${c.to ?? 'ended'}`).join(', ')}` : ''}\n`);
  return 0;
}
