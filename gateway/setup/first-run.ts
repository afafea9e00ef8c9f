/**
 * The first-run settings both `ccedge provision` and the HTTPS /setup page write: trunk peers, a
 * first queue (every answered call joins it) and the first agents, each with a one-time password
 * the agent replaces at first login. Passwords are returned once to be shown to the installer and
 * written to the config only as scrypt hashes.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { hashPassword, DEFAULT_SCRYPT, type ScryptParams } from '../acd/password';
import { loadConfig } from '../config/load';
import { CcedgeError } from '../errors';

const agentName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'an agent name is 1-64 letters, digits, _ . or - (e.g. alice)');

/** "alice" or "alice:Alice Martin" (flags, the /setup form), or { name, displayName }. */
export const firstAgentSchema = z.union([
  z
    .string()
    .max(200)
    .transform((s, ctx) => {
      const i = s.indexOf(':');
      const name = (i < 0 ? s : s.slice(0, i)).trim();
      const displayName = i < 0 ? undefined : s.slice(i + 1).trim() || undefined;
      const r = agentName.safeParse(name);
      if (!r.success) {
        ctx.addIssue({ code: 'custom', message: `"${s.slice(0, 70)}": ${r.error.issues[0]?.message ?? 'not a valid agent'}` });
        return z.NEVER;
      }
      return { name, displayName };
    }),
  z.object({ name: agentName, displayName: z.string().min(1).max(128).optional() }).strict(),
]);

export const trunkPeerSchema = z.string().refine(
  (s) => {
    const [addr, bits, extra] = s.split('/');
    if (extra !== undefined || isIP(addr) === 0) return false;
    return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (isIP(addr) === 4 ? 32 : 128));
  },
  { message: 'each trunk peer must be an IP address such as 10.0.0.5 or a network such as 10.0.0.0/24 (no host names)' },
);

export const firstRunSchema = z
  .object({
    /** Replaces the first trunk's allow-list (and its outbound address); absent: unchanged. */
    trunkPeers: z.array(trunkPeerSchema).min(1, 'give at least one trunk peer address (the PBX)').max(100).optional(),
    queue: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'the queue name is 1-64 letters, digits, _ . or - (e.g. support)'),
    agents: z
      .array(firstAgentSchema)
      .max(200, 'at most 200 agents here (add more later)')
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        for (const a of list) {
          if (seen.has(a.name)) ctx.addIssue({ code: 'custom', message: `agent "${a.name}" is listed twice` });
          seen.add(a.name);
        }
      }),
  })
  .strict();
export type FirstRunInput = z.infer<typeof firstRunSchema>;

export interface OneTimePassword {
  agent: string;
  password: string;
}

// No 0/O, 1/I/L: read aloud or copied from paper without mistakes.
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

/** 12 random characters from a 31-letter alphabet (about 59 bits), as XXXX-XXXX-XXXX. */
export function oneTimePassword(): string {
  let s = '';
  for (let i = 0; i < 12; i++) s += (i > 0 && i % 4 === 0 ? '-' : '') + ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

type Doc = Record<string, unknown>;

function list(doc: Doc, key: string): Doc[] {
  const v = doc[key];
  return Array.isArray(v) ? (v as Doc[]) : [];
}

/**
 * Adds the first-run settings to a config document (the YAML's object): the queue (if new), calls
 * joining it, the agents with one-time password hashes, the trunk peers. An agent name already in
 * the config is refused, not overwritten.
 */
export async function applyFirstRun(doc: Doc, input: FirstRunInput, scrypt: ScryptParams = DEFAULT_SCRYPT): Promise<{ doc: Doc; passwords: OneTimePassword[] }> {
  const out: Doc = structuredClone(doc);
  if (input.trunkPeers) {
    const trunks = list(out, 'trunks');
    const outbound = input.trunkPeers.find((p) => !p.includes('/'));
    const first: Doc = { ...(trunks[0] ?? { name: 'pbx' }), allow: input.trunkPeers };
    if (outbound) first.outbound = { ...((first.outbound as Doc | undefined) ?? {}), host: outbound };
    out.trunks = [first, ...trunks.slice(1)];
  }
  const queues = list(out, 'queues');
  if (!queues.some((q) => q.name === input.queue)) out.queues = [...queues, { name: input.queue }];
  out.calls = { ...((out.calls as Doc | undefined) ?? {}), queue: input.queue };
  const agents = list(out, 'agents');
  const passwords: OneTimePassword[] = [];
  const added: Doc[] = [];
  for (const a of input.agents) {
    if (agents.some((x) => x.name === a.name)) throw new CcedgeError('SETUP_REFUSED', `agent "${a.name}" already exists in the configuration`);
    const password = oneTimePassword();
    passwords.push({ agent: a.name, password });
    added.push({ name: a.name, ...(a.displayName ? { displayName: a.displayName } : {}), passwordHash: await hashPassword(password, scrypt), mustChangePassword: true });
  }
  out.agents = [...agents, ...added];
  return { doc: out, passwords };
}

/** Reads a config file as a document to change. */
export function readConfigDoc(file: string): Doc {
  const doc: unknown = YAML.parse(readFileSync(file, 'utf8'));
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new CcedgeError('CONFIG_INVALID', `${file} is not a YAML mapping`);
  return doc as Doc;
}

/**
 * Writes a config document atomically, after checking it exactly as the daemon will load it (the
 * environment left out: the file alone must be valid). Nothing is replaced if it is invalid.
 */
export function writeConfigDoc(file: string, doc: Doc, header: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `# ${header}\n${YAML.stringify(doc)}`, { mode: 0o640 });
  try {
    loadConfig({ file: tmp, env: {} });
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  renameSync(tmp, file);
}

/** Present once first-run setup is done (by `ccedge provision` with agents, or /setup): /setup is then closed. */
export function setupDoneFile(dataDir: string): string {
  return path.join(dataDir, 'keys', 'setup-done.json');
}

export function isSetupDone(dataDir: string): boolean {
  return existsSync(setupDoneFile(dataDir));
}

export function markSetupDone(dataDir: string, by: 'provision' | 'setup', agents: string[]): void {
  writeFileSync(setupDoneFile(dataDir), `${JSON.stringify({ at: new Date().toISOString(), by, agents }, null, 2)}\n`, { mode: 0o600 });
}

/** What to tell the installer, once: the passwords are not stored anywhere in clear. */
export function formatOneTimePasswords(passwords: readonly OneTimePassword[]): string {
  if (passwords.length === 0) return '';
  const w = Math.max(5, ...passwords.map((p) => p.agent.length));
  return (
    'one-time passwords (shown only now; each agent chooses a new password at first login):\n' +
    passwords.map((p) => `  ${p.agent.padEnd(w)}  ${p.password}\n`).join('')
  );
}
