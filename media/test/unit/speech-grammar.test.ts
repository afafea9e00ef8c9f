import assert from 'node:assert/strict';
import { isSpeechError } from '../../speech/errors';
import { buildGrammar, loadDictionary, matchGrammar, normalisePhrase } from '../../speech/jsgf';
import { upsample8to16, Upsampler8to16 } from '../../speech/resample';

const DICT = '/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict';

describe('speech grammar (JSGF) and upsampling', () => {
  let dictionary: Set<string>;
  before(() => {
    dictionary = loadDictionary(DICT);
  });

  it('reads the pronouncing dictionary, alternates folded into one word', () => {
    assert.ok(dictionary.size > 100000, `${dictionary.size} words`);
    assert.ok(dictionary.has('balance') && dictionary.has("i'd") && dictionary.has('to'));
    assert.ok(![...dictionary].some((w) => w.includes('(')));
  });

  it('builds one rule per intent with filler loops around the phrases', () => {
    const g = buildGrammar(
      [
        { name: 'billing', phrases: ['Pay my bill!', 'pay my bill', 'billing question'] },
        { name: 'lost card / fraud', phrases: ["I've lost my card"] },
      ],
      { dictionary },
    );
    assert.deepEqual(g.intents, [
      { name: 'billing', phrases: ['pay my bill', 'billing question'] },
      { name: 'lost card / fraud', phrases: ["i've lost my card"] },
    ]);
    assert.match(g.jsgf, /^#JSGF V1\.0;\ngrammar ccedge;\n/);
    assert.match(g.jsgf, /public <utterance> = <filler>\* \( <intent0> \| <intent1> \) <filler>\*;/);
    assert.match(g.jsgf, /<intent0> = pay my bill \| billing question;/);
    assert.match(g.jsgf, /<filler> = a \| i \| my \| please \| the \| to \| uh \| um;/);
  });

  it('refuses words the recogniser does not know, naming them and their intents', () => {
    assert.throws(
      () => buildGrammar([{ name: 'menu', phrases: ['press 1', 'zorblax account'] }, { name: 'x', phrases: ['zorblax'] }], { dictionary }),
      (err: unknown) => {
        assert.ok(isSpeechError(err, 'SPEECH_GRAMMAR_INVALID'));
        assert.match(err.message, /"1" \(menu\)/);
        assert.match(err.message, /"zorblax" \(menu, x\)/);
        assert.match(err.message, /spell numbers/);
        assert.deepEqual(err.details, { words: ['1', 'zorblax'] });
        return true;
      },
    );
  });

  it('refuses an empty grammar, an intent without words and an over-long phrase', () => {
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (err) {
        return isSpeechError(err) ? err.code : 'other';
      }
      return undefined;
    };
    assert.equal(code(() => buildGrammar([], { dictionary })), 'SPEECH_GRAMMAR_INVALID');
    assert.equal(code(() => buildGrammar([{ name: 'a', phrases: ['?!', ''] }], { dictionary })), 'SPEECH_GRAMMAR_INVALID');
    assert.equal(code(() => buildGrammar([{ name: 'a', phrases: [Array(13).fill('account').join(' ')] }], { dictionary })), 'SPEECH_GRAMMAR_INVALID');
    assert.equal(normalisePhrase("  'Hello',   World’s  "), "hello world's");
  });

  it('matches a hypothesis to the intent whose phrase it holds, longest phrase first', () => {
    const g = buildGrammar(
      [
        { name: 'balance', phrases: ['balance', 'account balance'] },
        { name: 'close', phrases: ['close my account'] },
      ],
      { dictionary },
    );
    assert.deepEqual(matchGrammar(g, 'uh i want my account balance please'), { intent: 'balance', phrase: 'account balance', confidence: 1 });
    assert.equal(matchGrammar(g, 'the balances'), null);
    const both = matchGrammar(g, 'close my account balance');
    assert.equal(both?.intent, 'close');
    assert.equal(both?.confidence, 0.5);
  });

  it('upsamples 8 → 16 kHz without images above the telephone band, the same streamed or whole', () => {
    const n = 8000;
    const x = new Int16Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.round(10000 * Math.sin((2 * Math.PI * 1000 * i) / 8000));
    const y = upsample8to16(x);
    assert.equal(y.length, 2 * n);
    const power = (hz: number): number => {
      let re = 0;
      let im = 0;
      for (let i = 1000; i < y.length; i++) {
        re += y[i] * Math.cos((2 * Math.PI * hz * i) / 16000);
        im += y[i] * Math.sin((2 * Math.PI * hz * i) / 16000);
      }
      return re * re + im * im;
    };
    // Linear interpolation leaves the 7 kHz image ~-25 dB down; the half-band filter far more.
    const imageDb = 10 * Math.log10(power(7000) / power(1000));
    assert.ok(imageDb < -50, `image at ${imageDb.toFixed(1)} dB`);
    const up = new Upsampler8to16();
    const streamed = new Int16Array(2 * n);
    for (let off = 0; off < n; off += 160) streamed.set(up.push(x.subarray(off, off + 160)), 2 * off);
    assert.deepEqual(streamed, y);
    const dc = upsample8to16(new Int16Array(400).fill(1234));
    assert.ok(dc.subarray(40).every((v) => Math.abs(v - 1234) <= 1));
  });
});
