/**
 * The admin API of live people data: /api/v1/agents, /api/v1/queues (CRUD, the config file's
 * field names) and /api/v1/away-reasons. Reads for any API token; changes for the admin role.
 * Answers are `{ status, body }`; errors carry a code: 400 PEOPLE_INVALID, 404 PEOPLE_NOT_FOUND,
 * 409 PEOPLE_EXISTS / PEOPLE_IN_USE, 405 for another method.
 */
import { CcedgeError } from '../errors';
import { addAgents, addQueue, publicAgent, removeAgent, removeQueue, setAgent, setAwayReasons, setQueue } from './people-edit';
import type { PeopleService } from './people-service';

export interface PeopleApiRequest {
  method: string;
  pathname: string;
  query: URLSearchParams;
  /** Parsed JSON body for POST/PATCH/PUT (read by the caller). */
  body?: unknown;
  role: 'admin' | 'supervisor' | 'compliance';
  /** Who asked (token name), for the log. */
  who: string;
}

export interface PeopleApiResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface PeopleViews {
  /** Live state of agents (desk), merged into GET answers by name. */
  agentStates?: () => Array<{ name: string }>;
  /** Live KPIs of queues, merged into GET answers by name. */
  queueKpis?: () => Array<{ name: string }>;
}

const ROUTE = /^\/api\/v1\/(agents|queues|away-reasons)(?:\/([A-Za-z0-9_.-]{1,64}))?$/;
const STATUS: Partial<Record<string, number>> = { PEOPLE_INVALID: 400, PEOPLE_NOT_FOUND: 404, PEOPLE_EXISTS: 409, PEOPLE_IN_USE: 409 };

/** True when `pathname` is one of these routes (the caller reads a body for it). */
export function isPeoplePath(pathname: string): boolean {
  return ROUTE.test(pathname);
}

export async function handlePeopleApi(service: PeopleService, views: PeopleViews, req: PeopleApiRequest): Promise<PeopleApiResponse> {
  const m = ROUTE.exec(req.pathname);
  if (!m) return error(404, 'HTTP_NOT_FOUND', `no such path ${req.pathname}`);
  const [, kind, name] = m;
  const allowed = kind === 'away-reasons' ? ['GET', 'PUT'] : name ? ['GET', 'PATCH', 'DELETE'] : ['GET', 'POST'];
  if (!allowed.includes(req.method)) return error(405, 'HTTP_BAD_REQUEST', `use ${allowed.join(', ')}`, { allow: allowed.join(', ') });
  if (req.method !== 'GET' && req.role !== 'admin') return error(403, 'HTTP_FORBIDDEN', 'only the admin role may change agents and queues');
  try {
    if (req.method === 'GET') return { status: 200, body: read(service, views, kind, name) };
    if (kind === 'away-reasons') {
      const r = await service.change('api', (p) => ({ people: setAwayReasons(p, req.body) }));
      return { status: 200, body: { awayReasons: service.current().awayReasons, version: r.version } };
    }
    if (kind === 'agents') {
      if (req.method === 'POST') {
        // One agent, or a list added all or nothing (CSV import).
        const list = Array.isArray(req.body) ? req.body : [req.body];
        if (list.length === 0) throw new CcedgeError('PEOPLE_INVALID', 'no agents given');
        const r = await service.change('api', (p) => addAgents(p, list));
        const body = Array.isArray(req.body) ? { agents: r.added, oneTimePasswords: r.oneTimePasswords, version: r.version } : { agent: r.added[0], oneTimePassword: r.oneTimePasswords[0]?.password, version: r.version };
        return { status: 201, body };
      }
      if (req.method === 'PATCH') {
        const r = await service.change('api', (p) => setAgent(p, name, req.body));
        return { status: 200, body: { agent: r.agent, version: r.version } };
      }
      const r = await service.change('api', (p) => ({ people: removeAgent(p, name) }));
      return { status: 200, body: { removed: name, afterCall: r.result.agentsRetiring.includes(name), version: r.version } };
    }
    if (req.method === 'POST') {
      const r = await service.change('api', (p) => addQueue(p, req.body));
      return { status: 201, body: { queue: r.queue, version: r.version } };
    }
    if (req.method === 'PATCH') {
      const r = await service.change('api', (p) => setQueue(p, name, req.body));
      return { status: 200, body: { queue: r.queue, version: r.version } };
    }
    const moveTo = req.query.get('moveTo') ?? undefined;
    if (moveTo !== undefined && !service.current().queues.some((q) => q.name === moveTo && q.name !== name)) throw new CcedgeError('PEOPLE_INVALID', `moveTo: no other queue "${moveTo}"`);
    const r = await service.change('api', (p) => ({ people: removeQueue(p, name) }), { moveTo });
    return { status: 200, body: { removed: name, calls: r.result.callsMoved, version: r.version } };
  } catch (e) {
    if (e instanceof CcedgeError && STATUS[e.code] !== undefined) return error(STATUS[e.code] as number, e.code, e.message);
    throw e;
  }
}

function read(service: PeopleService, views: PeopleViews, kind: string, name: string | undefined): unknown {
  const p = service.current();
  if (kind === 'away-reasons') return { awayReasons: p.awayReasons };
  if (kind === 'agents') {
    const states = new Map((views.agentStates?.() ?? []).map((s) => [s.name, s]));
    const list: Array<Record<string, unknown>> = p.agents.map((a) => ({ ...publicAgent(a), ...(states.get(a.name) ?? {}) }));
    // Removed agents still on a call are listed until it ends.
    for (const [n, st] of states) if (!p.agents.some((a) => a.name === n)) list.push({ ...st, removed: true });
    if (!name) return { agents: list };
    const one = list.find((a) => a.name === name);
    if (!one) throw new CcedgeError('PEOPLE_NOT_FOUND', `no agent "${name}"`);
    return { agent: one };
  }
  const kpis = new Map((views.queueKpis?.() ?? []).map((q) => [q.name, q]));
  const list = p.queues.map((q) => ({ ...q, ...(kpis.get(q.name) ?? {}) }));
  if (!name) return { queues: list };
  const one = list.find((q) => q.name === name);
  if (!one) throw new CcedgeError('PEOPLE_NOT_FOUND', `no queue "${name}"`);
  return { queue: one };
}

function error(status: number, code: string, message: string, headers?: Record<string, string>): PeopleApiResponse {
  return { status, body: { error: { code, message } }, headers };
}
