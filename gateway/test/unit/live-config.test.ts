import assert from 'node:assert/strict';
import { assignHotSections, checkDesiredConfig } from '../../config/live-config';
import { loadConfig } from '../../config/load';

describe('config pushed from the cloud (checkDesiredConfig)', () => {
  const base = (): ReturnType<typeof loadConfig>['config'] => loadConfig({ env: {}, cwd: '/nonexistent-dir' }).config;

  it('accepts hot sections, validates the whole result, and leaves the base untouched', () => {
    const b = base();
    const r = checkDesiredConfig(b, { queues: [{ name: 'support' }, { name: 'vip' }], recording: { record: 'none', queues: { vip: { record: 'all' } } } });
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.deepEqual(
      r.value.queues.map((q) => q.name),
      ['support', 'vip'],
    );
    assert.equal(r.value.recording.record, 'none');
    assert.deepEqual(
      b.queues.map((q) => q.name),
      ['support'],
    );
    const running = base();
    assignHotSections(running, r.value);
    assert.equal(running.recording.queues.vip?.record, 'all');
    assert.equal(running.sip.port, b.sip.port);
  });

  it('refuses a changed restart-only section, naming it; an unchanged one is fine', () => {
    const b = base();
    const cold = checkDesiredConfig(b, { sip: { ...b.sip, port: 5999 } });
    assert.equal(cold.ok, false);
    assert.match(cold.ok ? '' : cold.error, /sip cannot change while running/);
    assert.ok(checkDesiredConfig(b, { sip: b.sip }).ok);
  });

  it('refuses unknown sections, non-objects, and per-intent recording policy for an unknown intent', () => {
    const b = base();
    const unknown = checkDesiredConfig(b, { nope: 1 });
    assert.match(unknown.ok ? '' : unknown.error, /unknown config section\(s\): nope/);
    const arr = checkDesiredConfig(b, [1, 2]);
    assert.match(arr.ok ? '' : arr.error, /must be an object/);
    const intent = checkDesiredConfig(b, { recording: { intents: { payments: { record: 'none' } } } });
    assert.match(intent.ok ? '' : intent.error, /recording\.intents\.payments: no intent named "payments"/);
    const withIntent = checkDesiredConfig(b, { intents: [{ name: 'general', queue: 'support' }, { name: 'payments', queue: 'support' }], recording: { intents: { payments: { record: 'none' } } } });
    assert.ok(withIntent.ok, withIntent.ok ? '' : withIntent.error);
  });
});
