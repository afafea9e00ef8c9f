import assert from 'node:assert/strict';
import { bdecode, bencode, BencodeError } from '../../scripts/bench/bencode';

describe('bench bencode (rtpengine ng)', () => {
  it('encodes an ng offer with keys in byte order and byte lengths, not string lengths', () => {
    const sdp = 'v=0\r\ns=é\r\n';
    const out = bencode({ sdp, command: 'offer', 'call-id': 'c1', flags: ['trust-address'], n: -3 });
    assert.equal(out.toString('utf8'), `d7:call-id2:c17:command5:offer5:flagsl13:trust-addresse1:ni-3e3:sdp${Buffer.byteLength(sdp)}:${sdp}e`);
  });

  it('decodes what it encodes, nested', () => {
    const v = { result: 'ok', sdp: 'v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 24000 RTP/AVP 0\r\n', list: [1, 'x', { a: [] }], empty: '' };
    assert.deepEqual(bdecode(bencode(v)), v);
  });

  it('decodes from an offset (after the ng cookie)', () => {
    const msg = Buffer.concat([Buffer.from('123_4 '), bencode({ result: 'pong' })]);
    assert.deepEqual(bdecode(msg, 6), { result: 'pong' });
  });

  it('rejects truncated, trailing and malformed input with a coded error', () => {
    for (const bad of ['d6:result2:ok', '5:abc', 'i12', 'ie', 'i1x2e', 'd1:ae', 'di1ei2ee', 'le1', 'x', '']) {
      assert.throws(() => bdecode(Buffer.from(bad)), BencodeError, bad);
    }
  });

  it('refuses non-integer numbers instead of sending them', () => {
    assert.throws(() => bencode({ n: 1.5 }), TypeError);
  });
});
