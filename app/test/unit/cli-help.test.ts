import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { commandUsage, wantsHelp } from '../../cli/help';

const MAIN = path.join(__dirname, '..', '..', 'main.js');
const COMMANDS = ['run', 'backup', 'calls', 'config', 'status', 'queues', 'report', 'recordings', 'cert', 'provision', 'update', 'version', 'policy', 'outbox'];

describe('ccedge command line: --help and unknown options', function () {
  this.timeout(60_000);
  let cwd: string;
  before(() => {
    cwd = mkdtempSync(path.join(tmpdir(), 'cli-help-'));
  });
  after(() => rmSync(cwd, { recursive: true, force: true }));
  // No CCEDGE_* from the caller's environment: the commands must find nothing but an empty directory.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CCEDGE_')));
  const ccedge = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { cwd, encoding: 'utf8', env });

  it('finds the usage lines of each command, and --help/-h before any --', () => {
    assert.match(commandUsage('calls') ?? '', /calls \[--json\] \[--limit N\]/);
    assert.match(commandUsage('recordings') ?? '', /recordings export ID --out FILE/);
    assert.match(commandUsage('provision') ?? '', /--agent NAME\[:DISPLAY NAME\]/);
    assert.equal(commandUsage('nosuch'), undefined);
    assert.equal(wantsHelp(['list', '--help']), true);
    assert.equal(wantsHelp(['-h']), true);
    assert.equal(wantsHelp(['apply', '--', '--help']), false);
  });

  it('every command answers --help with exit 0 and its usage, creating nothing', () => {
    for (const c of COMMANDS) {
      const r = ccedge([c, '--help']);
      assert.equal(r.status, 0, `${c} --help: ${r.stderr}`);
      assert.match(r.stdout, /usage: ccedge/, c);
    }
    assert.equal(ccedge(['help', 'provision']).status, 0);
    assert.deepEqual(readdirSync(cwd), []);
  });

  it('unknown options and commands exit 2 naming the problem', () => {
    for (const args of [['calls', '--bogus'], ['provision', '--bogus'], ['recordings', 'list', '--nope'], ['nosuch'], ['help', 'nosuch']]) {
      const r = ccedge(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /Unknown option|unknown command|not a command/, args.join(' '));
    }
  });

  it('read-only commands in a directory without ccedge data exit 1 naming the path and create nothing', () => {
    for (const args of [['calls'], ['report', 'routing'], ['outbox'], ['recordings', 'list'], ['recordings', 'verify']]) {
      const r = ccedge(args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`CLI_NO_DATA_DIR: no ccedge data at ${path.join(cwd, 'var').replace(/[/.]/g, '\\$&')}`));
    }
    assert.deepEqual(readdirSync(cwd), [], 'no ./var, no database, no keys');
  });
});
