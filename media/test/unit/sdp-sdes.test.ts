import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MediaError } from '../../errors';
import { buildOffer, negotiateOffer, type AnswerOptions } from '../../sdp/negotiate';

const KEY = randomBytes(30);

function offer(profile: string, cryptoLines: string[] = []): string {
  return ['v=0', 'o=pbx 1 1 IN IP4 10.0.0.5', 's=-', 'c=IN IP4 10.0.0.5', 't=0 0', `m=audio 4000 ${profile} 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', ...cryptoLines, 'a=sendrecv', ''].join('\r\n');
}

const base: AnswerOptions = { localAddress: '10.0.0.1', localPort: 20000, sessionId: '1', sessionVersion: 1, codecs: ['PCMU'] };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof MediaError ? e.code : String(e);
  }
  return 'no error';
}

describe('SDES-SRTP offer/answer (RFC 4568)', () => {
  it('answers an RTP/SAVP offer with RTP/SAVP, the offered tag and our own key; keeps our key on request', () => {
    const ours = randomBytes(30);
    const { answerSdp, audio } = negotiateOffer(
      offer('RTP/SAVP', [`a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:${randomBytes(30).toString('base64')}`, `a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:${KEY.toString('base64')}|2^31`]),
      { ...base, srtp: 'optional', localKeySalt: ours },
    );
    assert.match(answerSdp, /^m=audio 20000 RTP\/SAVP 0 101\r$/m);
    assert.match(answerSdp, new RegExp(`^a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:${ours.toString('base64').replace(/[+/]/g, '\\$&')}\\r$`, 'm'));
    assert.ok(audio.srtp);
    assert.deepEqual(audio.srtp.remoteKeySalt, KEY);
    assert.deepEqual(audio.srtp.localKeySalt, ours);
    assert.equal(audio.srtp.tag, 3);
  });

  it('optional accepts plain RTP; required refuses it with SDP_SRTP_REQUIRED (488); off declines RTP/SAVP (488)', () => {
    assert.equal(negotiateOffer(offer('RTP/AVP'), { ...base, srtp: 'optional' }).audio.srtp, undefined);
    assert.equal(code(() => negotiateOffer(offer('RTP/AVP'), { ...base, srtp: 'required' })), 'SDP_SRTP_REQUIRED');
    assert.equal(code(() => negotiateOffer(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${KEY.toString('base64')}`]), base)), 'SDP_NO_COMMON_CODEC');
  });

  it('ignores crypto lines it cannot honour: MKI, wrong key length, session parameters, other suites', () => {
    const bad = [
      `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${KEY.toString('base64')}|2^20|1:4`,
      `a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:${randomBytes(29).toString('base64')}`,
      `a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:${KEY.toString('base64')} UNENCRYPTED_SRTP`,
      `a=crypto:4 F8_128_HMAC_SHA1_80 inline:${KEY.toString('base64')}`,
    ];
    assert.equal(code(() => negotiateOffer(offer('RTP/SAVP', bad), { ...base, srtp: 'required' })), 'SDP_NO_COMMON_CODEC');
    const flood = Array.from({ length: 500 }, (_, i) => `a=crypto:${i} AES_CM_128_HMAC_SHA1_80 inline:x`);
    assert.equal(code(() => negotiateOffer(offer('RTP/SAVP', flood), { ...base, srtp: 'required' })), 'SDP_NO_COMMON_CODEC');
  });

  it('buildOffer with SRTP offers RTP/SAVP and our key, which our own answerer accepts', () => {
    const ours = randomBytes(30);
    const sdp = buildOffer({ ...base, srtp: 'required', localKeySalt: ours });
    assert.match(sdp, /^m=audio 20000 RTP\/SAVP /m);
    const { audio } = negotiateOffer(sdp, { ...base, localAddress: '10.0.0.2', srtp: 'required' });
    assert.deepEqual(audio.srtp?.remoteKeySalt, ours);
  });
});
