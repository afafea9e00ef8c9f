import assert from 'node:assert/strict';
import pino from 'pino';
import { forkConfigSchema, type ForkConfig } from '../../../media/speech/audiohook/config';
import { ForkService } from '../../speech/fork-wiring';

describe('speech fork policy (which bridged calls fork where)', () => {
  const endpoints = { a: { url: 'ws://127.0.0.1:9/x', apiKey: 'k' }, b: { url: 'ws://127.0.0.1:10/x', apiKey: 'k' } };
  const service = (cfg: ForkConfig | undefined): ForkService => new ForkService({ config: () => cfg, log: pino({ level: 'silent' }) });

  it('intent wins over queue, queue over default; none opts out; no config, no fork', () => {
    const s = service(forkConfigSchema.parse({ allow: ['127.0.0.0/8'], endpoints, default: 'a', queues: { sales: 'b', vip: 'none' }, intents: { complaint: 'b', billing: 'none' } }));
    assert.equal(s.endpointFor('support', null), 'a');
    assert.equal(s.endpointFor('sales', null), 'b');
    assert.equal(s.endpointFor('vip', undefined), null);
    assert.equal(s.endpointFor('support', 'complaint'), 'b');
    assert.equal(s.endpointFor('sales', 'billing'), null);
    assert.equal(s.endpointFor(undefined, 'other'), 'a');
    const listed = service(forkConfigSchema.parse({ allow: ['127.0.0.0/8'], endpoints, queues: { sales: 'a' } }));
    assert.equal(listed.endpointFor('support', null), null, 'without default only the listed queues fork');
    assert.equal(listed.endpointFor('sales', null), 'a');
    assert.equal(service(undefined).endpointFor('sales', 'complaint'), null);
  });
});
