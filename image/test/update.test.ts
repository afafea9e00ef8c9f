import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { listRegularFiles } from '../ustar';
import { cleanEnv, copyBinary, ensureBinary, nextVersions, run, scratchDir, type Ran } from './helpers';


function parseJson(r: Ran): { ok: boolean; code?: string; error?: string; version?: string } {
  try {
    return JSON.parse(r.stdout) as { ok: boolean; code?: string };
  } catch {
    throw new Error(`not JSON: ${r.stdout}\n${r.stderr}`);
  }
}

describe('image: signed update bundles (ccedge update build|verify)', function () {
  this.timeout(120_000);
  let dir: string;
  let bin: string;
  let env: Record<string, string>;
  const v = nextVersions();
  const cli = (args: string[]): Promise<Ran> => run(bin, args, { cwd: dir, env });

  before(async () => {
    const b = await ensureBinary();
    dir = scratchDir('bundle');
    bin = copyBinary(b.file, dir);
    mkdirSync(path.join(dir, 'trusted'));
    env = cleanEnv({ CCEDGE_UPDATE_ROOT: path.join(dir, 'no-slots'), CCEDGE_UPDATE_KEYS: path.join(dir, 'trusted'), CCEDGE_UPDATE_CONF: '/nonexistent', CCEDGE_DATA_DIR: path.join(dir, 'data') });
    for (const name of ['release', 'rogue']) {
      const r = await cli(['update', 'keygen', '--out', path.join(dir, 'signing'), '--name', name]);
      assert.equal(r.code, 0, r.stderr);
    }
    copyFileSync(path.join(dir, 'signing', 'release.pub'), path.join(dir, 'trusted', 'release.pub'));
    writeFileSync(path.join(dir, 'payload.bin'), 'not really a daemon\n'.repeat(1000));
  });

  async function build(name: string, args: string[], payload = path.join(dir, 'payload.bin')): Promise<string> {
    const out = path.join(dir, `${name}.bundle`);
    const r = await cli(['update', 'build', '--key', path.join(dir, 'signing', 'release.key'), '--payload', `ccedge=${payload}`, '--out', out, ...args]);
    assert.equal(r.code, 0, r.stderr);
    return out;
  }

  async function verify(file: string): Promise<{ code: number | null; out: { ok: boolean; code?: string; error?: string; version?: string } }> {
    const r = await cli(['update', 'verify', file, '--json']);
    return { code: r.code, out: parseJson(r) };
  }

  it('accepts a good bundle, which GNU tar reads as a plain archive', async () => {
    const file = await build('good', ['--version', v.next]);
    const r = await verify(file);
    assert.deepEqual([r.code, r.out.ok, r.out.version], [0, true, v.next]);
    const listing = execFileSync('tar', ['tf', file]).toString().trim().split('\n');
    assert.deepEqual(listing, ['manifest.json', 'manifest.sig', 'payload/ccedge']);
    assert.deepEqual((await listRegularFiles(file)).map((e) => e.name), listing);
  });

  it('refuses a payload changed after signing: UPDATE_PAYLOAD_HASH', async () => {
    const file = await build('tampered-payload', ['--version', v.next]);
    const entry = (await listRegularFiles(file)).find((e) => e.name === 'payload/ccedge');
    assert.ok(entry);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, entry.offset + 100);
    closeSync(fd);
    const r = await verify(file);
    assert.equal(r.code, 1);
    assert.equal(r.out.code, 'UPDATE_PAYLOAD_HASH', r.out.error);
  });

  it('refuses a manifest changed after signing: UPDATE_BAD_SIGNATURE', async () => {
    const file = await build('tampered-manifest', ['--version', v.next]);
    const text = readFileSync(file);
    const at = text.indexOf(Buffer.from(`"version": "${v.next}"`));
    assert.ok(at > 0);
    // Same length, so the archive stays well-formed: only the signature can notice.
    text.write(`"version": "${v.later}"`, at);
    writeFileSync(file, text);
    const r = await verify(file);
    assert.equal(r.code, 1);
    assert.equal(r.out.code, 'UPDATE_BAD_SIGNATURE', r.out.error);
  });

  it('refuses a bundle signed with a key the device does not trust: UPDATE_UNTRUSTED_KEY', async () => {
    const out = path.join(dir, 'rogue.bundle');
    const b = await cli(['update', 'build', '--key', path.join(dir, 'signing', 'rogue.key'), '--payload', `ccedge=${path.join(dir, 'payload.bin')}`, '--version', v.next, '--out', out]);
    assert.equal(b.code, 0, b.stderr);
    const r = await verify(out);
    assert.equal(r.code, 1);
    assert.equal(r.out.code, 'UPDATE_UNTRUSTED_KEY', r.out.error);
  });

  it('refuses a downgrade below the installed version: UPDATE_DOWNGRADE', async () => {
    const r = await verify(await build('older', ['--version', v.older]));
    assert.equal(r.out.code, 'UPDATE_DOWNGRADE', r.out.error);
    const human = await cli(['update', 'verify', path.join(dir, 'older.bundle')]);
    assert.equal(human.code, 1);
    assert.match(human.stderr, /^ccedge: UPDATE_DOWNGRADE: version 0\.0\.1 is older than the installed/);
  });

  it('refuses a bundle for another kind of device: UPDATE_INCOMPATIBLE', async () => {
    const r = await verify(await build('other-device', ['--version', v.next, '--compatible', 'ccedge-appliance-linux-arm64']));
    assert.equal(r.out.code, 'UPDATE_INCOMPATIBLE', r.out.error);
  });

  it('refuses a bundle that needs a newer installed version: UPDATE_MIN_VERSION', async () => {
    const r = await verify(await build('needs-newer', ['--version', v.later, '--min-version', v.next]));
    assert.equal(r.out.code, 'UPDATE_MIN_VERSION', r.out.error);
  });

  it('refuses a file that is not a bundle: UPDATE_BUNDLE_MALFORMED', async () => {
    writeFileSync(path.join(dir, 'junk.bundle'), Buffer.alloc(4096, 7));
    const r = await verify(path.join(dir, 'junk.bundle'));
    assert.equal(r.out.code, 'UPDATE_BUNDLE_MALFORMED', r.out.error);
  });
});
