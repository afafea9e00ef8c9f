/**
 * Changes to the live people data (agents, queues, away reasons) as pure steps on a value, shared
 * by the admin API (through the daemon) and the CLI working offline. Every result is checked with
 * the config file's own schemas (acd/config.ts, agents/config.ts), cross-references included.
 * Clear passwords never get into the result: they are hashed here (scrypt); an agent created
 * without one gets a one-time password (returned once) it replaces at first login.
 */
import { z } from 'zod';
import { acdConfigIssues, agentConfigSchema, agentsSchema, overflowEdges, queueConfigSchema, queuesSchema, type AgentConfig, type QueueConfig } from '../acd/config';
import { DEFAULT_SCRYPT, hashPassword, type ScryptParams } from '../acd/password';
import { agentDeskConfigSchema } from '../agents/config';
import { CcedgeError } from '../errors';
import { oneTimePassword } from '../setup/first-run';

/** The live people data: what replaces the config file's `agents:`, `queues:` and `agentDesk.awayReasons`. */
export interface People {
  agents: AgentConfig[];
  queues: QueueConfig[];
  awayReasons: string[];
}

/** An agent as the API shows it: the config fields, never a password or its hash. */
export type PublicAgent = Omit<AgentConfig, 'password' | 'passwordHash'>;

export function publicAgent(a: AgentConfig): PublicAgent {
  const { password: _p, passwordHash: _h, ...rest } = a;
  return rest;
}

const awayReasonsSchema = agentDeskConfigSchema.shape.awayReasons.unwrap();

function issuesText(error: z.ZodError, prefix: string): string {
  return error.issues.map((i) => `${[prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(body)'}: ${i.message}`).join('; ');
}

/** Throws PEOPLE_INVALID unless the whole set passes the config file's schemas and cross-checks. */
export function checkPeople(p: People): People {
  const agents = agentsSchema.safeParse(p.agents);
  if (!agents.success) throw new CcedgeError('PEOPLE_INVALID', issuesText(agents.error, 'agents'));
  const queues = queuesSchema.safeParse(p.queues);
  if (!queues.success) throw new CcedgeError('PEOPLE_INVALID', issuesText(queues.error, 'queues'));
  const cross = acdConfigIssues(agents.data, queues.data);
  if (cross.length) throw new CcedgeError('PEOPLE_INVALID', cross.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const reasons = awayReasonsSchema.safeParse(p.awayReasons);
  if (!reasons.success) throw new CcedgeError('PEOPLE_INVALID', issuesText(reasons.error, 'awayReasons'));
  return { agents: agents.data, queues: queues.data, awayReasons: reasons.data };
}

/** Replaces a clear `password` by its hash; none at all (on create) gets a one-time password. */
async function secure(a: Record<string, unknown>, creating: boolean, scrypt: ScryptParams): Promise<{ agent: Record<string, unknown>; oneTimePassword?: string }> {
  const out = { ...a };
  let code: string | undefined;
  if (creating && out.password === undefined && out.passwordHash === undefined) {
    code = oneTimePassword();
    out.password = code;
    out.mustChangePassword = true;
  }
  if (typeof out.password === 'string' && out.password.length > 0 && out.password.length <= 1024) {
    // Checked before hashing (a hash would hide a bad value), with the schema's own rule.
    out.passwordHash = await hashPassword(out.password, scrypt);
    delete out.password;
  }
  return { agent: out, oneTimePassword: code };
}

function parseAgent(raw: Record<string, unknown>, where: string): AgentConfig {
  const parsed = agentConfigSchema.safeParse(raw);
  if (!parsed.success) throw new CcedgeError('PEOPLE_INVALID', issuesText(parsed.error, where));
  return parsed.data;
}

function object(body: unknown, what: string): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new CcedgeError('PEOPLE_INVALID', `${what} must be a JSON object`);
  return body as Record<string, unknown>;
}

/** Checks the shape of a new agent (before hashing: a bad password is reported as such). */
export function precheckAgent(body: Record<string, unknown>, where: string): void {
  const probe = { ...body };
  if (probe.password === undefined && probe.passwordHash === undefined) probe.password = 'x';
  if (probe.password !== undefined && probe.passwordHash !== undefined) {
    throw new CcedgeError('PEOPLE_INVALID', `${where}.password: give exactly one of password or passwordHash`);
  }
  // mustChangePassword with a clear password is fine here: it is hashed before it is kept.
  if (probe.mustChangePassword === true && probe.password !== undefined) probe.passwordHash = 'scrypt$16384$8$1$AAAA$AAAA';
  if (probe.passwordHash !== undefined) delete probe.password;
  parseAgent(probe, where);
}

export interface EditOptions {
  scrypt?: ScryptParams;
}

/** Adds agents (POST /api/v1/agents, `agents add`, CSV import: all or nothing). */
export async function addAgents(p: People, bodies: unknown[], opts: EditOptions = {}): Promise<{ people: People; added: PublicAgent[]; oneTimePasswords: Array<{ agent: string; password: string }> }> {
  const scrypt = opts.scrypt ?? DEFAULT_SCRYPT;
  const names = new Set(p.agents.map((a) => a.name));
  const added: AgentConfig[] = [];
  const codes: Array<{ agent: string; password: string }> = [];
  for (const [i, b] of bodies.entries()) {
    const where = bodies.length > 1 ? `agents.${i}` : '';
    const body = object(b, 'an agent');
    precheckAgent(body, where || 'agent');
    const name = String(body.name);
    if (names.has(name)) throw new CcedgeError('PEOPLE_EXISTS', `agent "${name}" exists already${where ? ` (${where})` : ''}`);
    names.add(name);
    const s = await secure(body, true, scrypt);
    added.push(parseAgent(s.agent, where || 'agent'));
    if (s.oneTimePassword) codes.push({ agent: name, password: s.oneTimePassword });
  }
  const people = checkPeople({ ...p, agents: [...p.agents, ...added] });
  return { people, added: added.map(publicAgent), oneTimePasswords: codes };
}

/**
 * Changes an agent (PATCH): fields given replace the current ones, `null` removes an optional
 * one (displayName, skills, queues, role); a new password or passwordHash replaces the old one.
 */
export async function setAgent(p: People, name: string, body: unknown, opts: EditOptions = {}): Promise<{ people: People; agent: PublicAgent }> {
  const i = p.agents.findIndex((a) => a.name === name);
  if (i < 0) throw new CcedgeError('PEOPLE_NOT_FOUND', `no agent "${name}"`);
  const patch = object(body, 'the change');
  if (patch.name !== undefined && patch.name !== name) throw new CcedgeError('PEOPLE_INVALID', 'name cannot be changed (remove the agent and add it again)');
  const merged: Record<string, unknown> = { ...p.agents[i] };
  if (patch.password !== undefined || patch.passwordHash !== undefined) {
    delete merged.passwordHash;
    delete merged.password;
    if (patch.mustChangePassword === undefined) delete merged.mustChangePassword;
  }
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  if (merged.password !== undefined && merged.passwordHash !== undefined) throw new CcedgeError('PEOPLE_INVALID', 'password: give exactly one of password or passwordHash');
  const s = await secure(merged, false, opts.scrypt ?? DEFAULT_SCRYPT);
  const agent = parseAgent(s.agent, 'agent');
  const agents = [...p.agents];
  agents[i] = agent;
  return { people: checkPeople({ ...p, agents }), agent: publicAgent(agent) };
}

export function removeAgent(p: People, name: string): People {
  if (!p.agents.some((a) => a.name === name)) throw new CcedgeError('PEOPLE_NOT_FOUND', `no agent "${name}"`);
  return checkPeople({ ...p, agents: p.agents.filter((a) => a.name !== name) });
}

function parseQueue(raw: unknown): QueueConfig {
  const parsed = queueConfigSchema.safeParse(object(raw, 'a queue'));
  if (!parsed.success) throw new CcedgeError('PEOPLE_INVALID', issuesText(parsed.error, 'queue'));
  return parsed.data;
}

export function addQueue(p: People, body: unknown): { people: People; queue: QueueConfig } {
  const queue = parseQueue(body);
  if (p.queues.some((q) => q.name === queue.name)) throw new CcedgeError('PEOPLE_EXISTS', `queue "${queue.name}" exists already`);
  return { people: checkPeople({ ...p, queues: [...p.queues, queue] }), queue };
}

/** Changes a queue (PATCH): fields given replace the current ones, `null` removes an optional one. */
export function setQueue(p: People, name: string, body: unknown): { people: People; queue: QueueConfig } {
  const i = p.queues.findIndex((q) => q.name === name);
  if (i < 0) throw new CcedgeError('PEOPLE_NOT_FOUND', `no queue "${name}"`);
  const patch = object(body, 'the change');
  if (patch.name !== undefined && patch.name !== name) throw new CcedgeError('PEOPLE_INVALID', 'name cannot be changed (add a queue and remove this one)');
  const merged: Record<string, unknown> = { ...p.queues[i] };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  const queue = parseQueue(merged);
  const queues = [...p.queues];
  queues[i] = queue;
  return { people: checkPeople({ ...p, queues }), queue };
}

/**
 * Removes a queue. Refused (PEOPLE_IN_USE) while agents name it in their `queues` or another
 * queue overflows into it: those are changed first, so nothing is changed behind the admin's back.
 */
export function removeQueue(p: People, name: string): People {
  if (!p.queues.some((q) => q.name === name)) throw new CcedgeError('PEOPLE_NOT_FOUND', `no queue "${name}"`);
  const agents = p.agents.filter((a) => a.queues?.includes(name)).map((a) => a.name);
  if (agents.length) throw new CcedgeError('PEOPLE_IN_USE', `queue "${name}" is served by agent(s) ${agents.join(', ')}: change their queues first`);
  const into = p.queues.filter((q) => q.name !== name && overflowEdges(q).some((e) => e.to === name)).map((q) => q.name);
  if (into.length) throw new CcedgeError('PEOPLE_IN_USE', `queue(s) ${into.join(', ')} overflow into "${name}": change them first`);
  return checkPeople({ ...p, queues: p.queues.filter((q) => q.name !== name) });
}

export function setAwayReasons(p: People, body: unknown): People {
  const list = Array.isArray(body) ? body : object(body, 'the away reasons').awayReasons;
  return checkPeople({ ...p, awayReasons: list as string[] });
}

