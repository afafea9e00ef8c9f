import assert from 'node:assert/strict';
import { configSchema } from '../../../gateway/config/schema';
import { sipProbe } from '../../trial-watch';

/**
 * Which SIP probe a version on trial uses. The SIP stack drops loopback OPTIONS unparsed unless a
 * trunk admits loopback, so a provisioned box (trunk = its PBX only) must not judge its health by
 * them: the boot test (npm run test:boot) saw every update roll back that way.
 */
describe('image: the trial SIP probe follows the trunk allow-lists', () => {
  const config = (sip: Record<string, unknown>, allow: string[]) => configSchema.parse({ site: { id: 's', deviceId: 'd' }, sip, trunks: [{ name: 'pbx', allow }] });

  it('OPTIONS over UDP when a trunk admits loopback (tests, a PBX on the same host)', () => {
    assert.equal(sipProbe(config({}, ['127.0.0.0/8'])), 'udp-options');
    assert.equal(sipProbe(config({ host: '127.0.0.1' }, ['127.0.0.1'])), 'udp-options');
  });

  it('the TCP listener when only the PBX is allowed (a provisioned box)', () => {
    assert.equal(sipProbe(config({}, ['10.0.0.5'])), 'tcp-accept');
    assert.equal(sipProbe(config({ host: '0.0.0.0' }, ['10.0.0.0/24'])), 'tcp-accept');
  });

  it('OPTIONS over UDP when there is no TCP listener to probe', () => {
    assert.equal(sipProbe(config({ tcp: false }, ['10.0.0.5'])), 'udp-options');
  });
});
