import assert from 'node:assert/strict';
import { clientMessage, PROTOCOL_VERSION } from '../../agent-ui/protocol';
import { parseWsMessage } from '../../net/ws-message';
import { WALLBOARD_PROTOCOL_VERSION, wallboardClientMessage } from '../../wallboard/protocol';

/** The one frame parser both page protocols use: what a page gets back for each kind of bad frame. */
describe('parseWsMessage (agent and wallboard frames)', () => {
  const agent = (text: string | Buffer, isBinary = false) => parseWsMessage(typeof text === 'string' ? Buffer.from(text) : text, isBinary, PROTOCOL_VERSION, clientMessage, 'protocol');
  const wallboard = (text: string) => parseWsMessage(Buffer.from(text), false, WALLBOARD_PROTOCOL_VERSION, wallboardClientMessage, 'wallboard protocol');
  const token = 'x'.repeat(32);

  it('accepts a valid agent hello and hands back its ref', () => {
    const r = agent(JSON.stringify({ v: 1, type: 'hello', token, ref: 'r1' }));
    assert.ok(r.ok);
    assert.equal(r.msg.type, 'hello');
    assert.equal(r.ref, 'r1');
  });

  it('refuses binary frames and text that is not JSON', () => {
    assert.deepEqual(agent(Buffer.from([1, 2, 3]), true), { ok: false, code: 'WS_BAD_MESSAGE', message: 'binary frames are not part of the protocol' });
    assert.deepEqual(wallboard('{"v":1,'), { ok: false, code: 'WS_BAD_MESSAGE', message: 'not JSON' });
  });

  it('refuses another protocol version, naming the one spoken, and keeps the ref (cut to 64 characters)', () => {
    const r = agent(JSON.stringify({ v: 2, type: 'hello', token, ref: 'a'.repeat(100) }));
    assert.deepEqual(r, { ok: false, code: 'WS_UNSUPPORTED_VERSION', message: 'this server speaks protocol version 1', ref: 'a'.repeat(64) });
    assert.deepEqual(wallboard('null'), { ok: false, code: 'WS_UNSUPPORTED_VERSION', message: 'this server speaks wallboard protocol version 1', ref: undefined });
  });

  it('refuses a message the schema rejects, naming the field', () => {
    const r = agent(JSON.stringify({ v: 1, type: 'hello', token: 'short', ref: 'r2' }));
    assert.ok(!r.ok);
    assert.equal(r.code, 'WS_BAD_MESSAGE');
    assert.match(r.message, /^token: /);
    assert.equal(r.ref, 'r2');
    const w = wallboard(JSON.stringify({ v: 1, type: 'ping', extra: true }));
    assert.ok(!w.ok);
    assert.equal(w.code, 'WS_BAD_MESSAGE');
  });
});
