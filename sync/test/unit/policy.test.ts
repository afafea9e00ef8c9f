import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { statSync } from 'node:fs';
import { SyncError } from '../../errors';
import { maskNumber, Policy } from '../../policy';
import { resolveSiteSecret } from '../../site-secret';
import { tempDir } from '../helpers/db';

const SECRET = 'site-secret-0123456789abcdef';

describe('sync/policy: residency', () => {
  it('a speech IVR decision leaves with its intent and confidence, never the caller\'s words', () => {
    const p = new Policy();
    const data = { callId: 'c1', queue: 'billing', intent: 'billing_inquiry', source: 'speech', priority: 0, vip: false, confidence: 0.82, how: 'grammar', text: 'my bill is wrong' };
    assert.deepEqual(p.apply('call.queued', data), { callId: 'c1', queue: 'billing', intent: 'billing_inquiry', source: 'speech', priority: 0, vip: false, confidence: 0.82, how: 'grammar' });
    // The IVR's own events carry the text too: they leave as the envelope only.
    assert.deepEqual(p.apply('call.ivr-speech', { callId: 'c1', text: 'my bill is wrong', confidence: 0.82 }), {});
    assert.deepEqual(p.apply('call.ivr-done', { callId: 'c1', text: 'my bill is wrong' }), {});
  });

  it('transcripts: a keyword alert leaves with the keyword only; a stored transcript with ids and a count, its aggregates only if the policy lists them', () => {
    const p = new Policy();
    assert.deepEqual(p.apply('transcript.keyword', { callId: 'c1', keyword: 'cancel', speaker: 'caller', atMs: 1200, text: 'i want to cancel' }), { callId: 'c1', keyword: 'cancel', speaker: 'caller', atMs: 1200 });
    const stored = { callId: 'c1', transcriptId: 't1', recordingId: 'r1', utterances: 7, sentimentScore: -3, talkRatio: 0.6, text: 'i want to cancel' };
    assert.deepEqual(p.apply('transcript.stored', stored), { callId: 'c1', transcriptId: 't1', recordingId: 'r1', utterances: 7 });
    const listed = new Policy({ events: { 'transcript.stored': { sentimentScore: 'plain', talkRatio: 'plain' } } });
    assert.deepEqual(listed.apply('transcript.stored', stored), { callId: 'c1', transcriptId: 't1', recordingId: 'r1', utterances: 7, sentimentScore: -3, talkRatio: 0.6 });
  });

  it('masks caller and called numbers, keeping the last 4 digits, from SIP URIs and plain numbers', () => {
    const p = new Policy();
    const out = p.apply('call.offered', { callId: 'c1', trunk: 'pbx', from: 'sip:+15551234567@192.0.2.10;user=phone', to: '"Support" <sip:0800123456@pbx>' });
    assert.deepEqual(out, { callId: 'c1', trunk: 'pbx', from: '+*******4567', to: '******3456' });
    assert.ok(!JSON.stringify(out).includes('5551234567'));
    assert.ok(!JSON.stringify(out).includes('192.0.2.10'), 'URI host does not leave either');
  });

  it('never shows more than half the digits, and obeys keepDigits', () => {
    assert.equal(maskNumber('1001', 4), '**01');
    assert.equal(maskNumber('12', 4), '*2');
    assert.equal(maskNumber('anonymous', 4), '***');
    assert.equal(maskNumber('+15551234567', 2), '+*********67');
    assert.equal(new Policy({ numbers: { keepDigits: 0 } }).number('5551234567'), '**********');
  });

  it('HMAC-SHA256 keyed by the site secret: stable, not reversible, same number in any notation', () => {
    const p = new Policy({ numbers: { mode: 'hmac' } }, { hmacKey: SECRET });
    const a = p.number('sip:+1 (555) 123-4567@pbx');
    const b = p.number('15551234567');
    assert.equal(a, b);
    assert.equal(a, createHmac('sha256', SECRET).update('15551234567').digest('hex'));
    assert.notEqual(a, new Policy({ numbers: { mode: 'hmac' } }, { hmacKey: `${SECRET}x` }).number('15551234567'));
    assert.throws(() => new Policy({ numbers: { mode: 'hmac' } }), (e: unknown) => e instanceof SyncError && e.code === 'SYNC_POLICY_INVALID');
  });

  it('mode drop: numbers do not leave at all', () => {
    const out = new Policy({ numbers: { mode: 'drop' } }).apply('call.offered', { callId: 'c', from: '5551234567' });
    assert.deepEqual(out, { callId: 'c' });
  });

  it('drops free text by default, allows it per field with digit runs masked', () => {
    const data = { callId: 'c1', note: 'customer asked to call back on +1 555 123 4567 tomorrow', agent: 'alice' };
    assert.deepEqual(new Policy().apply('call.note', data), { callId: 'c1', agent: 'alice' });
    const allowed = new Policy({ allowText: ['call.note.note'] }).apply('call.note', data);
    assert.equal(allowed.note, 'customer asked to call back on +*******4567 tomorrow');
    assert.deepEqual(new Policy().apply('call.offered', { callId: 'c', fromName: 'Jane Doe' }), { callId: 'c' });
    assert.deepEqual(new Policy().apply('call.dtmf', { callId: 'c', digit: '7', durationMs: 80 }), { callId: 'c', durationMs: 80 }, 'DTMF digits may be PINs');
  });

  it('allow-list: unknown fields and unknown event types leave nothing; nested objects and binary never', () => {
    const p = new Policy();
    assert.deepEqual(p.apply('call.answered', { callId: 'c', sipCallId: 'x@y', fromUri: 'sip:5551234567@h' }), { callId: 'c' });
    assert.deepEqual(p.apply('made.up', { callId: 'c', anything: 1 }), {});
    const rec = p.apply('recording.stored', {
      recordingId: 'r1',
      callId: 'c',
      durationMs: 61_000,
      bytes: 488_000,
      sha256: 'ab12345678901234567890cdef',
      audio: Buffer.alloc(1024),
      path: '/var/recordings/r1.enc',
      durationS: { nested: true },
    });
    assert.deepEqual(rec, { recordingId: 'r1', callId: 'c', durationMs: 61_000, bytes: 488_000, sha256: 'ab12345678901234567890cdef' });
    const ev = new Policy({ events: { 'recording.stored': { codec: 'plain' }, 'x.y': { blob: 'plain' } } });
    assert.deepEqual(ev.apply('x.y', { blob: new Uint8Array(8) }), {});
    assert.deepEqual(ev.apply('x.y', { blob: { a: 1 } }), {});
  });

  it('plain strings: a free-standing 7+ digit run is masked; ids, hashes and times are not', () => {
    const p = new Policy();
    const out = p.apply('call.rejected', { callId: '123e4567-e89b-12d3-a456-426614174000', cause: 'caller 5551234567 blocked', trunk: 'pbx' });
    assert.equal(out.callId, '123e4567-e89b-12d3-a456-426614174000');
    assert.equal(out.cause, 'caller ******4567 blocked');
    assert.equal(p.apply('config.applied', { appliedAt: '2025-01-01T12:00:00.000Z' }).appliedAt, '2025-01-01T12:00:00.000Z');
    assert.equal(p.apply('call.rejected', { cause: 'sip:5551234567@pbx' }).cause, 'sip:******4567@pbx');
  });

  it('config cannot weaken a number or text field, and deny removes fields', () => {
    assert.throws(() => new Policy({ events: { 'call.offered': { from: 'plain' } } }), /number field/);
    assert.throws(() => new Policy({ events: { 'call.note': { note: 'plain' } } }), /allowText/);
    assert.throws(() => new Policy({ events: { 'a.b': { seq: 'plain' } } }), /envelope/);
    assert.deepEqual(new Policy({ deny: ['call.offered.trunk'] }).apply('call.offered', { callId: 'c', trunk: 'pbx' }), { callId: 'c' });
    assert.deepEqual(new Policy({ events: { 'hw.fan': { rpm: 'plain' } } }).apply('hw.fan', { rpm: 1200, serial: 'x' }), { rpm: 1200 });
  });

  it('explain() prints what leaves', () => {
    const text = new Policy().explain('call.offered');
    assert.match(text, /call\.offered/);
    assert.match(text, /from\s+phone number: masked, last 4 digits/);
    assert.match(text, /fromName\s+free text: dropped/);
    assert.match(text, /trunk\s+as is/);
    assert.match(new Policy().explain('no.such'), /not a known event type/);
    assert.match(new Policy({ numbers: { mode: 'hmac' } }, { hmacKey: SECRET }).explain('call.offered'), /HMAC-SHA256/);
  });

  it('site secret: generated once into keys/sync-hmac.key (0600), then reused', () => {
    const tmp = tempDir();
    try {
      const a = resolveSiteSecret(tmp.dir);
      const b = resolveSiteSecret(tmp.dir);
      assert.equal(a.key.length, 32);
      assert.deepEqual(a.key, b.key);
      assert.equal(statSync(a.file as string).mode & 0o777, 0o600);
      assert.deepEqual(resolveSiteSecret(tmp.dir, 'configured-secret-123456').key, Buffer.from('configured-secret-123456'));
    } finally {
      tmp.cleanup();
    }
  });

  it('scrubLive: live snapshots and command results lose numbers and binary, keep aggregates', () => {
    const p = new Policy();
    const out = p.scrubLive({
      queue: 'support',
      waiting: 2,
      longestWaitS: 31.5,
      calls: [{ callId: 'c-1', caller: '+15551234567', fromUri: 'sip:5559876543@pbx', note: 'ring 5551112222', audio: Buffer.alloc(4) }],
      at: '2025-01-01T00:00:00.000Z',
    });
    assert.deepEqual(out, {
      queue: 'support',
      waiting: 2,
      longestWaitS: 31.5,
      calls: [{ callId: 'c-1', caller: '+*******4567', fromUri: '******6543', note: 'ring ******2222' }],
      at: '2025-01-01T00:00:00.000Z',
    });
  });
});
