import { z } from 'zod';
import type { SyncErrorCode } from './errors';
import type { MqttLink } from './mqtt-link';
import { SILENT_LOG, type SqlDb, type SyncLog } from './sql';
import { TOPICS } from './topics';

/** `cmd-result/<id>` payload. `error` is a message; `code` a stable code (CMD_*, or the handler's). */
export interface CommandResult {
  id: string | null;
  ok: boolean;
  result?: unknown;
  error?: string;
  code?: string;
}

export interface CommandContext {
  id: string;
  name: string;
}

type Handler = (args: never, ctx: CommandContext) => unknown;

/** A command id becomes a topic level: no wildcards, no separators. */
export const COMMAND_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const COMMAND_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** Where results of commands without a usable id go (there is no `<id>` to reply on). */
export const INVALID_RESULT_ID = '_invalid';
const MAX_PAYLOAD = 64 * 1024;

/**
 * Commands from the cloud on `cmd/<name>`: `{id, ...args}`. Arguments are validated with the zod
 * schema the gateway registered; each id runs at most once: its result is stored in sqlite
 * (`sync_commands`) and a repeated id gets the stored result again. Unknown or malformed commands
 * get an error result and a log line, never an exception.
 */
export class Commands {
  private readonly handlers = new Map<string, { schema: z.ZodType; handler: Handler }>();
  private readonly running = new Map<string, Promise<CommandResult>>();
  private readonly log: SyncLog;

  constructor(
    private readonly db: SqlDb,
    private readonly opts: { link?: MqttLink; log?: SyncLog; now?: () => Date; scrub?: (result: unknown) => unknown } = {},
  ) {
    this.log = opts.log ?? SILENT_LOG;
  }

  /** Registers `cmd/<name>`; the handler gets the parsed arguments (without `id`) and returns the result. */
  register<S extends z.ZodType>(name: string, schema: S, handler: (args: z.output<S>, ctx: CommandContext) => unknown): this {
    if (!COMMAND_NAME.test(name)) throw new Error(`command name "${name}" cannot be a topic level`);
    if (this.handlers.has(name)) throw new Error(`command "${name}" is already registered`);
    this.handlers.set(name, { schema, handler: handler as Handler });
    return this;
  }

  names(): string[] {
    return [...this.handlers.keys()].sort();
  }

  /** Handles one `cmd/<name>` message and publishes its result; resolves with the result. */
  async onMessage(name: string, payload: Buffer | string): Promise<CommandResult> {
    const result = await this.handle(name, payload);
    const link = this.opts.link;
    if (link) {
      const sent = link.publish(TOPICS.cmdResult(result.id ?? INVALID_RESULT_ID), JSON.stringify(result), { qos: 1 }, (err) => {
        if (err) this.log.warn({ err, cmdId: result.id }, 'command result not acknowledged; the cloud gets it again when it repeats the id');
      });
      if (!sent) this.log.warn({ cmdId: result.id }, 'command result not sent (offline); stored for a repeated id');
    }
    return result;
  }

  /** Validates, runs (once per id) and stores; never throws. */
  async handle(name: string, payload: Buffer | string): Promise<CommandResult> {
    const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : payload;
    let body: unknown;
    try {
      if (Buffer.byteLength(text) > MAX_PAYLOAD) throw new Error(`payload larger than ${MAX_PAYLOAD} bytes`);
      body = JSON.parse(text);
    } catch (e) {
      return this.reject(null, name, 'CMD_MALFORMED', `command payload is not JSON: ${(e as Error).message}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return this.reject(null, name, 'CMD_MALFORMED', 'command payload must be a JSON object {id, ...args}');
    const rawId = (body as { id?: unknown }).id;
    if (typeof rawId !== 'string' || !COMMAND_ID.test(rawId)) {
      return this.reject(null, name, 'CMD_MALFORMED', 'command id must be a string of 1-128 letters, digits, _ . : -');
    }
    const id = rawId;
    const inFlight = this.running.get(id);
    if (inFlight) return inFlight;
    const work = this.runOnce(id, name, body as Record<string, unknown>);
    this.running.set(id, work);
    try {
      return await work;
    } finally {
      this.running.delete(id);
    }
  }

  /** Deletes stored results older than `maxAgeS` (the cloud will not repeat ids that old). */
  async prune(maxAgeS: number): Promise<number> {
    const now = this.opts.now?.() ?? new Date();
    const cutoff = new Date(now.getTime() - maxAgeS * 1000).toISOString();
    const r = await this.db.transaction((tx) => tx.run('DELETE FROM sync_commands WHERE received_at < ?', [cutoff]));
    return r.changes;
  }

  private async runOnce(id: string, name: string, body: Record<string, unknown>): Promise<CommandResult> {
    try {
      const stored = await this.db.transaction((tx) => tx.get<{ result: string }>('SELECT result FROM sync_commands WHERE id = ?', [id]));
      if (stored) {
        this.log.info({ cmdId: id, cmd: name }, 'repeated command id: stored result returned');
        return JSON.parse(stored.result) as CommandResult;
      }
    } catch (err) {
      this.log.error({ err, cmdId: id }, 'command store unreadable');
      return { id, ok: false, error: 'command store unavailable', code: 'CMD_FAILED' };
    }
    const result = await this.execute(id, name, body);
    try {
      await this.db.transaction((tx) =>
        tx.run('INSERT OR IGNORE INTO sync_commands (id, name, received_at, result) VALUES (?, ?, ?, ?)', [
          id,
          name,
          (this.opts.now?.() ?? new Date()).toISOString(),
          JSON.stringify(result),
        ]),
      );
    } catch (err) {
      this.log.error({ err, cmdId: id }, 'command result could not be stored; a repeated id would run again');
    }
    return result;
  }

  private async execute(id: string, name: string, body: Record<string, unknown>): Promise<CommandResult> {
    const entry = this.handlers.get(name);
    if (!entry) return this.reject(id, name, 'CMD_UNKNOWN', `unknown command "${name}"`);
    const { id: _id, ...args } = body;
    const parsed = entry.schema.safeParse(args);
    if (!parsed.success) {
      return this.reject(id, name, 'CMD_INVALID_ARGS', `invalid arguments: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`).join('; ')}`);
    }
    try {
      const raw = await entry.handler(parsed.data as never, { id, name });
      const value = raw === undefined || !this.opts.scrub ? raw : this.opts.scrub(raw);
      this.log.info({ cmdId: id, cmd: name }, 'command executed');
      return value === undefined ? { id, ok: true } : { id, ok: true, result: value };
    } catch (e) {
      const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'CMD_FAILED';
      const message = e instanceof Error ? e.message : String(e);
      this.log.warn({ cmdId: id, cmd: name, code, err: { message } }, 'command failed');
      return { id, ok: false, error: message, code };
    }
  }

  private reject(id: string | null, name: string, code: SyncErrorCode, message: string): CommandResult {
    this.log.warn({ cmdId: id, cmd: name, code }, `command refused: ${message}`);
    return { id, ok: false, error: message, code };
  }
}
