import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import YAML from 'yaml';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { eventually, runCli, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';

const COMPLIANCE = 'compliance-token-0123456789';

async function query<T>(file: string, sql: string): Promise<T[]> {
  const d = await new Promise<sqlite3.Database>((resolve, reject) => {
    const h = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => (err ? reject(err) : resolve(h)));
  });
  try {
    return await new Promise<T[]>((resolve, reject) => d.all<T>(sql, (err, rows) => (err ? reject(err) : resolve(rows))));
  } finally {
    await new Promise<void>((resolve) => d.close(() => resolve()));
  }
}

type Call = { id: string; state: string; fromUser: string | null; agent: string | null };
type Rec = { id: string; callId: string; state: string };

describe('backup during calls, restore on a new box', function () {
  this.timeout(240_000);
  const scratch = mkdtempSync(path.join(tmpdir(), 'ccedge-backup-e2e-'));
  const root = path.join(scratch, 'share');
  const passFile = path.join(scratch, 'backup.pass');
  const restored = path.join(scratch, 'restored');
  const config = {
    calls: { queue: 'support' },
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
    agents: [{ name: 'alice', password: 'alice-password' }],
    recording: { record: 'all', retentionDays: 30 },
    http: { tokens: [{ name: 'carla', token: COMPLIANCE, role: 'compliance' }] },
    backup: { path: root, passphraseFile: passFile, keep: { count: 3, days: 0 } },
  };
  const configFile = path.join(scratch, 'ccedge.yaml');
  let a: DaemonHandle | undefined;
  let b: DaemonHandle | undefined;
  const uacs: TestUac[] = [];
  const agents: WeriftAgent[] = [];

  before(() => {
    writeFileSync(passFile, 'installer-set passphrase 0123\n', { mode: 0o600 });
    writeFileSync(configFile, YAML.stringify(config));
  });
  after(async () => {
    for (const u of uacs) u.close();
    for (const g of agents) await g.close().catch(() => undefined);
    await a?.stop();
    await b?.stop();
    rmSync(scratch, { recursive: true, force: true });
    for (const d of [a?.dataDir, b?.dataDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  /** The CLI against daemon `d` (its data dir, HTTP port, token) with the installer's config file. */
  const cli = (d: { dataDir: string; httpPort?: number }, args: string[]): ReturnType<typeof runCli> =>
    runCli([...args, '--config', configFile], {
      CCEDGE_DATA_DIR: d.dataDir,
      CCEDGE_HTTP_HOST: '127.0.0.1',
      CCEDGE_HTTP_PORT: String(d.httpPort ?? 1),
      CCEDGE_ADMIN_TOKEN: 'e2e-admin-token-0123456789',
      CCEDGE_LOG_LEVEL: 'error',
    });

  it('brings back calls, agent events, the outbox position and a playable recording', async () => {
    a = await startDaemon({ config, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1', CCEDGE_DEVICE_ID: 'edge-7' } });
    const alice = await WeriftAgent.login(a.httpPort, 'alice', 'alice-password');
    agents.push(alice);
    alice.available();

    // 1. A recorded call, finished.
    const uac1 = await TestUac.create({ codec: 'PCMU' });
    uacs.push(uac1);
    assert.equal(await uac1.call(`127.0.0.1:${a.sipPort}`, { from: '5558101' }), 200);
    const c1 = await alice.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected');
    const peer1 = alice.peer(c1.callId);
    assert.ok(peer1);
    for (let i = 0; i < 50; i++) {
      peer1.sendAudio(Buffer.alloc(160, 0x2a), 5000 + i * 160);
      await sleep(20);
    }
    assert.equal(await uac1.hangup(), 200);
    const rec = await eventually(async () => (await a?.api<{ recordings: Rec[] }>('/api/v1/recordings'))?.body.recordings.find((r) => r.callId === c1.callId && r.state === 'final'), 15_000);

    // 2. Calls in progress: one with alice (recording), one waiting in the queue.
    const inbox = alice.inbox.length;
    const uac2 = await TestUac.create({ codec: 'PCMU' });
    uacs.push(uac2);
    assert.equal(await uac2.call(`127.0.0.1:${a.sipPort}`, { from: '5558102' }), 200);
    const c2 = await alice.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected', 15_000, inbox);
    await alice.waitFor((m) => m.type === 'recording' && m.active, 15_000, inbox);
    const uac3 = await TestUac.create({ codec: 'PCMU' });
    uacs.push(uac3);
    assert.equal(await uac3.call(`127.0.0.1:${a.sipPort}`, { from: '5558103' }), 200);
    const live = await eventually(async () => {
      const calls = (await a?.api<{ calls: Call[] }>('/api/v1/calls'))?.body.calls ?? [];
      return calls.filter((c) => c.state === 'answered').length === 2 && calls;
    });

    // 3. `ccedge backup now` while both calls are up: the daemon does it.
    const now = await cli(a, ['backup', 'now']);
    assert.equal(now.code, 0, now.stderr);
    assert.match(now.stdout, /by the running daemon/);
    assert.equal((await a.api<{ calls: Call[] }>('/api/v1/calls')).body.calls.filter((c) => c.state === 'answered').length, 2, 'the calls are still up');
    const health = (await a.api<{ backup: { lastSuccessAt: string | null; failures: number } }>('/healthz')).body;
    assert.ok(health.backup.lastSuccessAt, 'health shows the backup');
    assert.equal(health.backup.failures, 0);
    const metrics = await (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
    const last = /^ccedge_backup_last_success_timestamp_seconds (\S+)$/m.exec(metrics);
    assert.ok(last && Number(last[1]) > 0, 'metrics show the last success');
    assert.match(metrics, /^ccedge_backup_last_bytes [1-9]/m);
    const list = await cli(a, ['backup', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const backups = JSON.parse(list.stdout) as Array<{ id: string; outbox: { lastSeq: number }; device: string }>;
    assert.equal(backups.length, 1);
    assert.equal(backups[0].device, 'edge-7');
    const verify = await cli(a, ['backup', 'verify']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /sealed and decryptable/);
    // Nothing of the plain database, keys or audio is on the share.
    for (const f of (JSON.parse(readFileSync(path.join(root, backups[0].id, 'manifest.json'), 'utf8')) as { files: Array<{ path: string }> }).files) {
      const bytes = readFileSync(path.join(root, f.path));
      assert.equal(bytes.includes(Buffer.from('SQLite format 3')), false, f.path);
      assert.equal(bytes.includes(Buffer.from('-----BEGIN')), false, `${f.path}: no PEM (certificate keys) in the clear`);
      assert.equal(bytes.includes(Buffer.from('RIFF')), false, `${f.path}: no WAV`);
      assert.equal(bytes.includes(readFileSync(path.join(a.dataDir, 'keys', 'site.key'))), false, f.path);
    }

    // 4. The old box goes on (events after the backup), then dies.
    assert.equal(await uac2.hangup(), 200);
    assert.equal(await uac3.hangup(), 200);
    await alice.close();
    const wavA = path.join(scratch, 'a.wav');
    const exportA = await cli(a, ['recordings', 'export', rec.id, '--out', wavA, '--reason', 'backup test']);
    assert.equal(exportA.code, 0, exportA.stderr);
    await a.stop();
    const outboxA = await cli(a, ['outbox', '--json']);
    assert.equal(outboxA.code, 0, outboxA.stderr);
    const lastSeqA = (JSON.parse(outboxA.stdout) as { lastSeq: number }).lastSeq;
    assert.ok(lastSeqA > backups[0].outbox.lastSeq, 'the old box wrote events after the backup');
    const backupEvents = await query<{ payload: string }>(path.join(a.dataDir, 'ccedge.db'), "SELECT payload FROM sync_outbox WHERE type = 'backup.completed'");
    assert.equal(backupEvents.length, 1, 'a backup.completed event for the cloud');
    const ev = JSON.parse(backupEvents[0].payload) as Record<string, unknown>;
    assert.equal(ev.backupId, backups[0].id);
    assert.equal(JSON.stringify(ev).includes(root), false, 'no path leaves the box');

    // 5. A new box: restore refuses a wrong passphrase, then restores; a second restore is refused.
    const wrongPass = path.join(scratch, 'wrong.pass');
    writeFileSync(wrongPass, 'someone else entirely', { mode: 0o600 });
    const wrong = await cli({ dataDir: restored }, ['backup', 'restore', '--passphrase-file', wrongPass]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /BACKUP_BAD_PASSPHRASE/);
    assert.equal(existsSync(path.join(restored, 'ccedge.db')), false);
    const restore = await cli({ dataDir: restored }, ['backup', 'restore']);
    assert.equal(restore.code, 0, restore.stderr);
    const again = await cli({ dataDir: restored }, ['backup', 'restore']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /BACKUP_TARGET_NOT_EMPTY/);

    // 6. The daemon on the restored data dir.
    b = await startDaemon({ config, dataDir: restored, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1', CCEDGE_DEVICE_ID: 'edge-7' } });
    const calls = (await b.api<{ calls: Call[] }>('/api/v1/calls')).body.calls;
    const byId = new Map(calls.map((c) => [c.id, c]));
    assert.equal(byId.get(c1.callId)?.fromUser, '5558101');
    assert.equal(byId.get(c1.callId)?.agent, 'alice');
    assert.equal(byId.get(c2.callId)?.fromUser, '5558102', 'the call that was up at the backup');
    assert.ok(live.every((c) => byId.has(c.id)), 'every call up at the backup is in the restored records');
    const aliceEvents = await query<{ state: string; callId: string | null }>(path.join(restored, 'ccedge.db'), "SELECT state, call_id AS callId FROM agent_events WHERE agent = 'alice' ORDER BY id");
    assert.ok(aliceEvents.some((e) => e.callId === c1.callId), 'agent events of the first call came back');

    const recsB = (await b.api<{ recordings: Rec[] }>('/api/v1/recordings')).body.recordings;
    assert.ok(recsB.some((r) => r.id === rec.id && r.state === 'final'));
    assert.ok(recsB.some((r) => r.callId === c2.callId && r.state === 'final'), 'the recording under way at the backup is finished on restore, as after a crash');
    const verifyB = await cli(b, ['recordings', 'verify']);
    assert.equal(verifyB.code, 0, verifyB.stderr);
    const wavB = path.join(scratch, 'b.wav');
    const exportB = await cli(b, ['recordings', 'export', rec.id, '--out', wavB, '--reason', 'restore test']);
    assert.equal(exportB.code, 0, exportB.stderr);
    const audioA = readFileSync(wavA);
    // Interleaved stereo after the 58-byte WAV header: the right channel carries the agent.
    const right = Buffer.from(audioA.subarray(58).filter((_, i) => i % 2 === 1));
    assert.ok(right.includes(Buffer.alloc(80, 0x2a)), 'the exported original holds the agent audio');
    assert.deepEqual(readFileSync(wavB), audioA, 'the restored recording decrypts to the same audio');

    // The next event gets a seq above every seq the old box used, before and after the backup.
    // (The restored outbox still holds the old box's unacknowledged agent.login: count past it.)
    const loginsBefore = (await query<{ n: number }>(path.join(restored, 'ccedge.db'), "SELECT COUNT(*) AS n FROM sync_outbox WHERE type = 'agent.login'"))[0].n;
    const alice2 = await WeriftAgent.login(b.httpPort, 'alice', 'alice-password');
    agents.push(alice2);
    const login = await eventually(async () => {
      const rows = await query<{ seq: number }>(path.join(restored, 'ccedge.db'), "SELECT seq FROM sync_outbox WHERE type = 'agent.login' ORDER BY seq");
      return rows.length > loginsBefore && rows[rows.length - 1];
    });
    assert.ok(login.seq > lastSeqA, `new seq ${login.seq} > ${lastSeqA}`);
    const sync = (await b.api<{ lastSeq: number }>('/api/v1/sync')).body;
    assert.ok(sync.lastSeq >= login.seq);

    // A damaged file on the share is named by verify (exit 1).
    const pooled = readFileSync(path.join(root, 'recordings', `${rec.id}.ccrec`));
    pooled[pooled.length - 100] ^= 0xff;
    writeFileSync(path.join(root, 'recordings', `${rec.id}.ccrec`), pooled);
    const damaged = await cli(b, ['backup', 'verify']);
    assert.equal(damaged.code, 1);
    assert.match(damaged.stderr, new RegExp(`recordings/${rec.id}\\.ccrec: SHA-256 differs`));
  });
});
