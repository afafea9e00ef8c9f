import assert from 'node:assert/strict';
import { addressAllowed, endpointAddress, forkConfigSchema } from '../../speech/audiohook/config';
import { durationMs, isoDuration, parseServerMessage } from '../../speech/audiohook/protocol';
import { StereoBuffer } from '../../speech/audiohook/stereo-buffer';
import { linearToAlaw, linearToUlaw } from '../../tones/g711';

const issues = (input: unknown): string[] => {
  const r = forkConfigSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('AudioHook fork config (speech.fork)', () => {
  const base = { allow: ['10.20.0.0/16', '127.0.0.0/8'], endpoints: { ana: { url: 'wss://10.20.1.5:8443/audiohook', apiKey: 'k' } } };

  it('accepts literal on-site addresses and fills defaults', () => {
    const cfg = forkConfigSchema.parse({ ...base, default: 'ana', queues: { sales: 'none' } });
    assert.equal(cfg.endpoints.ana.maxBufferedKb, 64);
    assert.equal(cfg.endpoints.ana.organizationId, '00000000-0000-0000-0000-000000000000');
    assert.deepEqual(cfg.intents, {});
    assert.deepEqual(issues({ allow: ['::1/128'], endpoints: { a: { url: 'ws://[::1]:9000/x', apiKey: 'k' } } }), []);
    assert.deepEqual(issues({ allow: ['127.0.0.0/8'], endpoints: { a: { url: 'ws://localhost:9000/x', apiKey: 'k' } } }), []);
  });

  it('refuses an off-site address, a host name, clear text off the box, bad CIDRs and dangling policy names', () => {
    const off = issues({ ...base, endpoints: { cloud: { url: 'wss://203.0.113.7/audiohook', apiKey: 'k' } } });
    assert.deepEqual(off, ['endpoints.cloud.url: address 203.0.113.7 is outside speech.fork.allow (10.20.0.0/16, 127.0.0.0/8): audio never leaves the site']);
    assert.match(issues({ ...base, endpoints: { n: { url: 'wss://speech.example.com/x', apiKey: 'k' } } })[0], /is a name: use a literal on-site address/);
    // An IPv4-mapped IPv6 form of an outside address is still outside.
    assert.match(issues({ ...base, endpoints: { m: { url: 'wss://[::ffff:203.0.113.7]/x', apiKey: 'k' } } })[0], /outside speech.fork.allow/);
    assert.match(issues({ ...base, endpoints: { c: { url: 'ws://10.20.1.5/x', apiKey: 'k' } } })[0], /ws:\/\/ sends audio in clear text/);
    assert.match(issues({ ...base, endpoints: { u: { url: 'wss://user:pw@10.20.1.5/x', apiKey: 'k' } } })[0], /credentials go in apiKey/);
    assert.match(issues({ ...base, allow: ['10.0.0.0/33'] })[0], /not a CIDR range/);
    assert.match(issues({ ...base, allow: [] })[0], /name the on-site ranges/);
    assert.match(issues({ ...base, endpoints: { a: { url: 'wss://10.20.1.5/x' } } })[0], /needs apiKey or a client certificate/);
    assert.match(issues({ ...base, endpoints: { a: { url: 'wss://10.20.1.5/x', tls: { certFile: '/c.pem' } } } })[0], /certFile and keyFile go together/);
    assert.deepEqual(issues({ ...base, queues: { sales: 'nope' }, intents: { billing: 'ana' }, default: 'gone' }), [
      'default: no endpoint named "gone" in speech.fork.endpoints',
      'queues.sales: no endpoint named "nope" in speech.fork.endpoints',
    ]);
    assert.match(issues({ ...base, endpoints: { ana: { url: 'https://10.20.1.5/x', apiKey: 'k' } } })[0], /must start with ws:\/\/ or wss:\/\//);
  });

  it('endpointAddress and addressAllowed', () => {
    assert.equal(endpointAddress('ws://localhost:1/x'), '127.0.0.1');
    assert.equal(endpointAddress('wss://[fd00::5]/x'), 'fd00::5');
    assert.equal(endpointAddress('wss://host.local/x'), null);
    assert.equal(addressAllowed('::ffff:127.0.0.1', ['127.0.0.0/8']), true);
    assert.equal(addressAllowed('10.21.0.1', ['10.20.0.0/16']), false);
    assert.equal(addressAllowed('garbage', ['10.20.0.0/16']), false);
  });
});

describe('AudioHook protocol', () => {
  it('durations: ISO 8601 seconds both ways', () => {
    assert.equal(isoDuration(0), 'PT0S');
    assert.equal(isoDuration(8000), 'PT1S');
    assert.equal(isoDuration(2400), 'PT0.3S');
    assert.equal(isoDuration(12345), 'PT1.543S');
    assert.equal(durationMs('PT1.543S'), 1543);
    assert.equal(durationMs('PT12S'), 12000);
    assert.equal(durationMs('P1D'), null);
    assert.equal(durationMs('PT-1S'), null);
  });

  it('parses what a server sends; refuses garbage with a reason', () => {
    const ok = parseServerMessage(JSON.stringify({ version: '2', id: 'a', type: 'opened', seq: 1, clientseq: 1, parameters: { media: [{ type: 'audio', format: 'PCMU', channels: ['external', 'internal'], rate: 8000 }] } }));
    assert.ok(ok.ok && ok.message.type === 'opened');
    const ev = parseServerMessage(
      JSON.stringify({
        version: '2',
        id: 'a',
        type: 'event',
        seq: 2,
        clientseq: 3,
        parameters: { entities: [{ type: 'transcript', data: { channel: 'external', isFinal: true, alternatives: [{ confidence: 0.5, interpretations: [{ type: 'display', transcript: 'hi' }] }] } }, { type: 'agentassist', data: {} }] },
      }),
    );
    assert.ok(ev.ok);
    for (const [text, why] of [
      ['{"version":"2"', /not JSON/],
      ['[]', /./],
      [JSON.stringify({ version: '1', id: 'a', type: 'pong', seq: 1, clientseq: 1, parameters: {} }), /version/],
      [JSON.stringify({ version: '2', id: 'a', type: 'opened', seq: -1, clientseq: 1, parameters: { media: [] } }), /seq/],
      [JSON.stringify({ version: '2', id: 'a', type: 'nonsense', seq: 1, clientseq: 1, parameters: {} }), /type/],
      [JSON.stringify({ version: '2', id: 'a', type: 'event', seq: 1, clientseq: 1, parameters: { entities: [{ type: 'transcript', data: { channel: 'sideways' } }] } }), /./],
    ] as const) {
      const r = parseServerMessage(text);
      assert.equal(r.ok, false, text);
      if (!r.ok) assert.match(r.reason, why);
    }
  });
});

describe('AudioHook stereo framing', () => {
  it('interleaves external and internal, pads a side that lags beyond the skew, transcodes A-law', () => {
    const b = new StereoBuffer('PCMU', 16_000, 800);
    b.pushExternal(Buffer.alloc(160, 0x11));
    assert.equal(b.ready(), 0, 'one side only, within the skew: wait for the other');
    b.pushInternal(Buffer.alloc(160, 0x22));
    assert.equal(b.ready(), 160);
    const f = b.take(['external', 'internal']);
    assert.equal(f.length, 320);
    assert.deepEqual([...f.subarray(0, 4)], [0x11, 0x22, 0x11, 0x22]);
    // The agent side alone for 1000 samples (a held caller): 200 past the skew go out with silence left.
    b.pushInternal(Buffer.alloc(1000, 0x33));
    assert.equal(b.ready(), 200);
    const g = b.take(['external', 'internal']);
    assert.deepEqual([...g.subarray(0, 2)], [0xff, 0x33]);
    // Mono: only the channel the endpoint chose; the other still moves on.
    b.pushExternal(Buffer.alloc(800, 0x44));
    const m = b.take(['internal']);
    assert.equal(m.length, 800);
    assert.ok(m.every((x) => x === 0x33));
    assert.equal(b.ready(), 0);

    const a = new StereoBuffer('PCMA');
    a.pushExternal(Buffer.from([linearToAlaw(1000)]));
    a.pushInternal(Buffer.from([linearToAlaw(-3000)]));
    assert.deepEqual([...a.take(['external', 'internal'])], [linearToUlaw(1000), linearToUlaw(-3000)]);
  });

  it('a full ring overwrites the oldest and counts it', () => {
    const b = new StereoBuffer('PCMU', 320, 800);
    b.pushExternal(Buffer.alloc(400, 1));
    b.pushInternal(Buffer.alloc(400, 2));
    assert.equal(b.overwritten, 160);
    assert.equal(b.ready(), 320);
    assert.equal(b.skip(), 320);
    assert.equal(b.ready(), 0);
  });
});
