import assert from 'node:assert/strict';
import { buildOffer, negotiateOffer, type AnswerOptions } from '../../sdp/negotiate';
import { MediaError } from '../../errors';

const OPTS: AnswerOptions = {
  localAddress: '10.1.2.3',
  localPort: 20000,
  sessionId: '4242',
  sessionVersion: 1,
  codecs: ['PCMU', 'PCMA'],
};

const SIPP_UAC =
  'v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

const ASTERISK_LIKE = [
  'v=0',
  'o=- 1234 1 IN IP4 192.168.1.10',
  's=Asterisk',
  'c=IN IP4 192.168.1.10',
  't=0 0',
  'm=audio 16384 RTP/AVP 8 0 18 101',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:18 G729/8000',
  'a=fmtp:18 annexb=no',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join('\r\n');

function offer(lines: string[]): string {
  return lines.join('\r\n') + '\r\n';
}

function base(mLines: string[], sessionExtra: string[] = [], conn = 'c=IN IP4 192.0.2.7'): string {
  return offer(['v=0', 'o=- 1 1 IN IP4 192.0.2.7', 's=-', ...(conn ? [conn] : []), 't=0 0', ...sessionExtra, ...mLines]);
}

function expectMediaError(fn: () => unknown, code: string, msg?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MediaError, `expected MediaError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (msg) assert.match(err.message, msg);
    return true;
  });
}

function mLines(sdp: string): string[] {
  return sdp.split('\r\n').filter((l) => l.startsWith('m='));
}

describe('SDP negotiateOffer', () => {
  it('answers the sipp default uac offer with PCMU on our address and port', () => {
    const { answerSdp, audio } = negotiateOffer(SIPP_UAC, OPTS);
    assert.equal(audio.codec, 'PCMU');
    assert.equal(audio.payloadType, 0);
    assert.equal(audio.remoteAddress, '127.0.0.1');
    assert.equal(audio.remotePort, 6000);
    assert.equal(audio.localDirection, 'sendrecv');
    assert.equal(audio.onHold, false);
    assert.equal(audio.telephoneEventPayloadType, undefined);
    assert.ok(answerSdp.endsWith('\r\n'));
    assert.ok(!/[^\r]\n/.test(answerSdp), 'every line ends with CRLF');
    const lines = answerSdp.split('\r\n');
    assert.equal(lines[0], 'v=0');
    assert.ok(lines.includes('o=ccedge 4242 1 IN IP4 10.1.2.3'));
    assert.ok(lines.includes('s=ccedge'));
    assert.ok(lines.includes('c=IN IP4 10.1.2.3'));
    assert.ok(lines.includes('t=0 0'));
    assert.ok(lines.includes('m=audio 20000 RTP/AVP 0'));
    assert.ok(lines.includes('a=rtpmap:0 PCMU/8000'));
    assert.ok(lines.includes('a=ptime:20'));
    assert.ok(lines.includes('a=sendrecv'));
  });

  it("honours the offerer's codec order (PCMA first) and accepts telephone-event 101", () => {
    const { answerSdp, audio } = negotiateOffer(ASTERISK_LIKE, OPTS);
    assert.equal(audio.codec, 'PCMA');
    assert.equal(audio.payloadType, 8);
    assert.equal(audio.telephoneEventPayloadType, 101);
    assert.equal(audio.remotePort, 16384);
    assert.deepEqual(mLines(answerSdp), ['m=audio 20000 RTP/AVP 8 101']);
    assert.ok(answerSdp.includes('a=rtpmap:101 telephone-event/8000\r\n'));
    assert.ok(answerSdp.includes('a=fmtp:101 0-16\r\n'));
    assert.ok(!answerSdp.includes('G729'));
  });

  it('skips a codec we have disabled even if offered first', () => {
    const { audio } = negotiateOffer(ASTERISK_LIKE, { ...OPTS, codecs: ['PCMU'] });
    assert.equal(audio.codec, 'PCMU');
  });

  it('recognises PCMU on a dynamic payload type', () => {
    const { audio, answerSdp } = negotiateOffer(base(['m=audio 4000 RTP/AVP 96', 'a=rtpmap:96 pcmu/8000']), OPTS);
    assert.equal(audio.codec, 'PCMU');
    assert.equal(audio.payloadType, 96);
    assert.ok(answerSdp.includes('m=audio 20000 RTP/AVP 96\r\n'));
  });

  it('rejects a G.729-only offer with SDP_NO_COMMON_CODEC', () => {
    expectMediaError(
      () => negotiateOffer(base(['m=audio 4000 RTP/AVP 18', 'a=rtpmap:18 G729/8000']), OPTS),
      'SDP_NO_COMMON_CODEC',
      /no common codec/,
    );
  });

  it('rejects video with port 0 keeping its type and formats, and answers audio', () => {
    const sdp = base(['m=video 5000 RTP/AVP 96 97', 'a=rtpmap:96 H264/90000', 'm=audio 4000 RTP/AVP 0']);
    const { answerSdp, audio } = negotiateOffer(sdp, OPTS);
    assert.deepEqual(mLines(answerSdp), ['m=video 0 RTP/AVP 96 97', 'm=audio 20000 RTP/AVP 0']);
    assert.equal(audio.remotePort, 4000);
  });

  it('rejects a second audio stream with port 0', () => {
    const sdp = base(['m=audio 4000 RTP/AVP 0', 'm=audio 4002 RTP/AVP 8']);
    assert.deepEqual(mLines(negotiateOffer(sdp, OPTS).answerSdp), ['m=audio 20000 RTP/AVP 0', 'm=audio 0 RTP/AVP 8']);
  });

  it('uses a later audio stream when the first one has no common codec', () => {
    const sdp = base(['m=audio 4000 RTP/AVP 18', 'm=audio 4002 RTP/AVP 8']);
    const { answerSdp, audio } = negotiateOffer(sdp, OPTS);
    assert.equal(audio.remotePort, 4002);
    assert.deepEqual(mLines(answerSdp), ['m=audio 0 RTP/AVP 18', 'm=audio 20000 RTP/AVP 8']);
  });

  describe('hold', () => {
    const cases: Array<[string, string[], string[], string, string, boolean]> = [
      ['media-level sendonly', [], ['a=sendonly'], 'sendonly', 'recvonly', true],
      ['session-level sendonly', ['a=sendonly'], [], 'sendonly', 'recvonly', true],
      ['inactive', [], ['a=inactive'], 'inactive', 'inactive', true],
      ['recvonly', [], ['a=recvonly'], 'recvonly', 'sendonly', false],
      ['media level overrides session level', ['a=sendonly'], ['a=sendrecv'], 'sendrecv', 'sendrecv', false],
    ];
    for (const [name, sess, media, remote, local, onHold] of cases) {
      it(`${name} → answer ${local}`, () => {
        const { answerSdp, audio } = negotiateOffer(base(['m=audio 4000 RTP/AVP 0', ...media], sess), OPTS);
        assert.equal(audio.remoteDirection, remote);
        assert.equal(audio.localDirection, local);
        assert.equal(audio.onHold, onHold);
        assert.ok(answerSdp.includes(`a=${local}\r\n`));
      });
    }

    it('c=0.0.0.0 (RFC 2543 hold) in a re-offer → onHold and answer recvonly', () => {
      // 0.0.0.0 is hold only inside a dialog: an initial offer with it is refused (below).
      const { answerSdp, audio } = negotiateOffer(base(['m=audio 4000 RTP/AVP 0'], [], 'c=IN IP4 0.0.0.0'), { ...OPTS, reoffer: true });
      assert.equal(audio.onHold, true);
      assert.equal(audio.localDirection, 'recvonly');
      assert.equal(audio.remoteAddress, '0.0.0.0');
      assert.ok(answerSdp.includes('a=recvonly\r\n'));
    });
  });

  describe('c= addresses media must never go to (SDP_ADDRESS_REFUSED → 488)', () => {
    const audio = ['m=audio 4000 RTP/AVP 0'];
    const cases: Array<[string, string]> = [
      ['multicast 224.0.0.1 (session level)', base(audio, [], 'c=IN IP4 224.0.0.1')],
      ['multicast with a TTL 239.1.2.3/127', base(audio, [], 'c=IN IP4 239.1.2.3/127')],
      ['multicast at media level', base([...audio, 'c=IN IP4 233.252.0.1'])],
      ['broadcast 255.255.255.255', base(audio, [], 'c=IN IP4 255.255.255.255')],
      ['broadcast at media level', base([...audio, 'c=IN IP4 255.255.255.255'])],
      ['session multicast even if the media level overrides it', base([...audio, 'c=IN IP4 192.0.2.8'], [], 'c=IN IP4 224.0.0.1')],
      ['0.0.0.0 in an initial offer', base(audio, [], 'c=IN IP4 0.0.0.0')],
      ['0.0.0.0 at media level in an initial offer', base([...audio, 'c=IN IP4 0.0.0.0'])],
    ];
    for (const [name, sdp] of cases) {
      it(name, () => expectMediaError(() => negotiateOffer(sdp, OPTS), 'SDP_ADDRESS_REFUSED'));
    }

    it('multicast and broadcast are refused in a re-offer too; 0.0.0.0 there is hold', () => {
      expectMediaError(() => negotiateOffer(base(audio, [], 'c=IN IP4 224.0.0.1'), { ...OPTS, reoffer: true }), 'SDP_ADDRESS_REFUSED');
      expectMediaError(() => negotiateOffer(base([...audio, 'c=IN IP4 255.255.255.255']), { ...OPTS, reoffer: true }), 'SDP_ADDRESS_REFUSED');
      assert.equal(negotiateOffer(base(audio, [], 'c=IN IP4 0.0.0.0'), { ...OPTS, reoffer: true }).audio.onHold, true);
    });

    it('neighbours of the refused ranges and loopback are accepted', () => {
      for (const ip of ['223.255.255.255', '240.0.0.1', '127.0.0.1', '255.255.255.254', '10.0.0.0']) {
        assert.equal(negotiateOffer(base(audio, [], `c=IN IP4 ${ip}`), OPTS).audio.remoteAddress, ip);
      }
    });
  });

  describe('hostile offers only ever throw MediaError', () => {
    it('empty body', () => expectMediaError(() => negotiateOffer('', OPTS), 'SDP_INVALID'));
    it('whitespace body', () => expectMediaError(() => negotiateOffer('\r\n \r\n', OPTS), 'SDP_INVALID'));
    it('no v= line', () => expectMediaError(() => negotiateOffer(SIPP_UAC.replace('v=0\r\n', ''), OPTS), 'SDP_INVALID', /v=0/));
    it('no m= line', () => expectMediaError(() => negotiateOffer(base([]), OPTS), 'SDP_INVALID'));
    it('missing c= at both levels', () =>
      expectMediaError(() => negotiateOffer(base(['m=audio 4000 RTP/AVP 0'], [], ''), OPTS), 'SDP_INVALID', /c=/));
    it('media-level c= is enough', () => {
      const { audio } = negotiateOffer(base(['m=audio 4000 RTP/AVP 0', 'c=IN IP4 192.0.2.99'], [], ''), OPTS);
      assert.equal(audio.remoteAddress, '192.0.2.99');
    });
    it('hostname in c= is not resolved', () =>
      expectMediaError(() => negotiateOffer(base(['m=audio 4000 RTP/AVP 0'], [], 'c=IN IP4 pbx.example.com'), OPTS), 'SDP_INVALID', /IPv4 literal/));
    it('IPv6 c=', () =>
      expectMediaError(() => negotiateOffer(base(['m=audio 4000 RTP/AVP 0'], [], 'c=IN IP6 2001:db8::1'), OPTS), 'SDP_INVALID', /IPv6/));
    it('port out of range', () =>
      expectMediaError(() => negotiateOffer(base(['m=audio 70000 RTP/AVP 0']), OPTS), 'SDP_INVALID', /port/));
    it('RTP/SAVP only', () =>
      expectMediaError(() => negotiateOffer(base(['m=audio 4000 RTP/SAVP 0', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xyz']), OPTS), 'SDP_NO_COMMON_CODEC', /RTP\/SAVP/));
    it('non-RTP profile', () =>
      expectMediaError(() => negotiateOffer(base(['m=audio 4000 udp 0']), OPTS), 'SDP_NO_COMMON_CODEC'));
    it('video only', () =>
      expectMediaError(() => negotiateOffer(base(['m=video 4000 RTP/AVP 31']), OPTS), 'SDP_NO_COMMON_CODEC'));
    it('10,000 m-lines', () => {
      const many = Array.from({ length: 10_000 }, (_, i) => `m=audio ${2000 + i * 2} RTP/AVP 0`);
      expectMediaError(() => negotiateOffer(base(many), OPTS), 'SDP_INVALID');
    });
    it('garbage m-line', () => expectMediaError(() => negotiateOffer(base(['m=audio x RTP/AVP']), OPTS), 'SDP_INVALID'));
    it('binary noise', () => {
      const noise = Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919) % 256)).toString('latin1');
      expectMediaError(() => negotiateOffer('v=0\r\n' + noise, OPTS), 'SDP_INVALID');
    });
    it('junk tokens in a rejected format list are not echoed into the answer', () => {
      const { answerSdp } = negotiateOffer(base(['m=audio 4000 RTP/AVP 0', 'm=video 5000 RTP/AVP 31 a=evil\x01']), OPTS);
      assert.deepEqual(mLines(answerSdp), ['m=audio 20000 RTP/AVP 0', 'm=video 0 RTP/AVP 31']);
      assert.ok(!answerSdp.includes('evil'));
    });
    it('absurd ptime: answer 20, record 20', () => {
      const { answerSdp, audio } = negotiateOffer(base(['m=audio 4000 RTP/AVP 0', 'a=ptime:99999999']), OPTS);
      assert.equal(audio.ptime, 20);
      assert.ok(answerSdp.includes('a=ptime:20\r\n'));
    });
    it('sane non-20 ptime is recorded but the answer stays 20', () => {
      const { answerSdp, audio } = negotiateOffer(base(['m=audio 4000 RTP/AVP 0', 'a=ptime:30']), OPTS);
      assert.equal(audio.ptime, 30);
      assert.ok(answerSdp.includes('a=ptime:20\r\n'));
    });
  });
});

describe('SDP buildOffer', () => {
  it('offers our codecs in preference order plus telephone-event, and our answerer accepts it', () => {
    const sdp = buildOffer({ ...OPTS, codecs: ['PCMA', 'PCMU'] });
    assert.deepEqual(mLines(sdp), ['m=audio 20000 RTP/AVP 8 0 101']);
    const { audio } = negotiateOffer(sdp, { ...OPTS, localPort: 30000 });
    assert.equal(audio.codec, 'PCMA');
    assert.equal(audio.telephoneEventPayloadType, 101);
    assert.equal(audio.remoteAddress, '10.1.2.3');
  });
  it('sets the requested direction', () => {
    assert.ok(buildOffer({ ...OPTS, direction: 'sendonly' }).includes('a=sendonly\r\n'));
  });
});
