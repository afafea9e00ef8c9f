import assert from 'node:assert/strict';
import { parseInfoDtmf } from '../../ivr/sip-info-dtmf';

describe('parseInfoDtmf', () => {
  it('reads application/dtmf-relay (Signal=5, Duration=160)', () => {
    assert.equal(parseInfoDtmf('application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n'), '5');
    assert.equal(parseInfoDtmf('application/dtmf-relay', 'Duration=160\nSignal=#\n'), '#');
    assert.equal(parseInfoDtmf('application/dtmf-relay', 'signal= *\r\nduration=250'), '*');
    assert.equal(parseInfoDtmf('Application/DTMF-Relay; charset=us-ascii', 'Signal = d\r\n'), 'D');
    assert.equal(parseInfoDtmf('application/dtmf-relay', Buffer.from('Signal=0\r\nDuration=100')), '0');
  });

  it('maps event codes 10-15 to * # A-D', () => {
    assert.equal(parseInfoDtmf('application/dtmf-relay', 'Signal=10\r\nDuration=160'), '*');
    assert.equal(parseInfoDtmf('application/dtmf-relay', 'Signal=11\r\nDuration=160'), '#');
    assert.equal(parseInfoDtmf('application/dtmf-relay', 'Signal=15'), 'D');
    assert.equal(parseInfoDtmf('application/dtmf', '12'), 'A');
  });

  it('reads application/dtmf (body is the digit)', () => {
    assert.equal(parseInfoDtmf('application/dtmf', '5'), '5');
    assert.equal(parseInfoDtmf('application/dtmf', ' 7\r\n'), '7');
    assert.equal(parseInfoDtmf('application/dtmf', '#'), '#');
    assert.equal(parseInfoDtmf('application/dtmf', 'b'), 'B');
    assert.equal(parseInfoDtmf('application/dtmf', 'Signal=3\r\nDuration=100'), '3');
  });

  it('returns null for other content types and missing parts', () => {
    assert.equal(parseInfoDtmf('application/sdp', 'Signal=5'), null);
    assert.equal(parseInfoDtmf('text/plain', '5'), null);
    assert.equal(parseInfoDtmf('application/dtmf-relayx', 'Signal=5'), null);
    assert.equal(parseInfoDtmf(undefined, 'Signal=5'), null);
    assert.equal(parseInfoDtmf({ type: 'application/dtmf' }, '5'), null);
    assert.equal(parseInfoDtmf('application/dtmf', undefined), null);
    assert.equal(parseInfoDtmf('application/dtmf', ''), null);
    assert.equal(parseInfoDtmf('application/dtmf-relay', ''), null);
  });

  it('is robust to garbage', () => {
    const garbage: unknown[] = [
      'Signal=', 'Signal=55', 'Signal=16', 'Signal=-1', 'Signal=E', 'Signal=1 2', 'Duration=160', '5',
      'Signal=\u0000', '\u00ff\u00fe', 'Signal=1'.padEnd(2000, 'x'), 'Signal=%31', 'Signal=0x5', 'Signal=5;6',
      42, null, {}, [], Buffer.alloc(5000, 0x35),
    ];
    for (const body of garbage) assert.equal(parseInfoDtmf('application/dtmf-relay', body), null, `body ${JSON.stringify(body)}`);
    for (const body of ['55', 'x', '5 5', '', '\r\n', '10x', '016']) assert.equal(parseInfoDtmf('application/dtmf', body), null, `body ${body}`);
    // Random bytes never throw.
    for (let i = 0; i < 500; i++) {
      const b = Buffer.alloc(1 + (i % 64));
      for (let j = 0; j < b.length; j++) b[j] = (i * 31 + j * 17) & 0xff;
      parseInfoDtmf(i % 2 ? 'application/dtmf' : 'application/dtmf-relay', i % 3 ? b : b.toString('latin1'));
    }
  });

  it('takes the first Signal line', () => {
    assert.equal(parseInfoDtmf('application/dtmf-relay', 'Signal=1\r\nSignal=2\r\n'), '1');
  });
});
