import assert from 'node:assert/strict';
import { SpeechIntentClassifier, tokens } from '../../speech/intent-classifier';

const INTENTS = [
  { name: 'billing_inquiry', examples: ['my bill is wrong', 'pay my bill', 'question about my invoice', 'billing'] },
  { name: 'technical_support', examples: ['my internet is down', 'the router does not work', 'technical problem', 'no connection'] },
  { name: 'sales', examples: ['buy a new phone', 'upgrade my contract', 'new contract'] },
];

describe('SpeechIntentClassifier', () => {
  const c = new SpeechIntentClassifier(INTENTS);

  it('decides by the example phrase the hypothesis contains, with the engine confidence', () => {
    const d = c.classify({ text: 'um i think my bill is wrong', confidence: 0.9 });
    assert.deepEqual(d, { intent: 'billing_inquiry', confidence: 0.9, text: 'um i think my bill is wrong', how: 'grammar' });
    assert.equal(c.classify({ text: 'hello the router does not work today', confidence: 0.8 })?.intent, 'technical_support');
  });

  it('the longest phrase wins, and a second intent named lowers the confidence', () => {
    const d = c.classify({ text: 'i want to buy a new phone and pay my bill', confidence: 1 });
    assert.equal(d?.intent, 'sales');
    assert.equal(d?.how, 'grammar');
    assert.equal(d?.confidence, 0.5);
    const alone = c.classify({ text: 'buy a new phone', confidence: 1 });
    assert.equal(alone?.confidence, 1);
  });

  it('wording the grammar missed goes to the classifier trained on the examples', () => {
    const d = c.classify({ text: 'internet down again', confidence: 0.9 });
    assert.equal(d?.intent, 'technical_support');
    assert.equal(d?.how, 'classifier');
    assert.ok(d !== null && d.confidence > 0 && d.confidence <= 0.9);
    assert.equal(c.classify({ text: 'invoice wrong', confidence: 0.9 })?.intent, 'billing_inquiry');
  });

  it('nothing for silence, fillers only or unrelated words', () => {
    assert.equal(c.classify({ text: '', confidence: 1 }), null);
    assert.equal(c.classify({ text: 'um uh the', confidence: 1 }), null);
    assert.equal(c.classify({ text: 'giraffe', confidence: 1 }), null);
  });

  it('a short phrase is weak evidence (a grammar search reads mumbling as the shortest phrase)', () => {
    assert.equal(c.classify({ text: 'um billing the', confidence: 1 })?.confidence, 1 / 3);
    assert.equal(c.classify({ text: 'a new contract', confidence: 1 })?.confidence, 2 / 3);
    assert.equal(c.classify({ text: 'pay my bill', confidence: 1 })?.confidence, 1);
  });

  it('an engine confidence outside 0..1 is clamped; a whole-word match only', () => {
    assert.equal(c.classify({ text: 'pay my bill', confidence: 7 })?.confidence, 1);
    assert.equal(c.classify({ text: 'pay my bill', confidence: Number.NaN })?.confidence, 0);
    // "billings" is not the phrase "billing": the grammar step must not match inside a word.
    assert.notEqual(c.classify({ text: 'billings', confidence: 1 })?.how, 'grammar');
  });

  describe('with a dictation check of the same audio', () => {
    it('a grammar phrase confirmed by a content word of the check decides at full confidence, with the check\'s words', () => {
      const d = c.classify({ text: 'a to the pay my bill um', confidence: 1 }, { text: "hello i'd like to pay my bill clinton", confidence: 0.7 });
      assert.deepEqual(d, { intent: 'billing_inquiry', confidence: 1, text: "hello i'd like to pay my bill clinton", how: 'grammar' });
      const e = c.classify({ text: 'uh my internet is down a', confidence: 1 }, { text: 'my internet connection and not work', confidence: 0.65 });
      assert.equal(e?.intent, 'technical_support');
      assert.equal(e?.confidence, 1);
    });

    it('mumbling forced onto a phrase by the grammar is not confirmed: low confidence', () => {
      const d = c.classify({ text: 'a question about my invoice a um', confidence: 1 }, { text: 'well laid out and let me think', confidence: 0.33 });
      assert.equal(d?.intent, 'billing_inquiry');
      assert.ok(d !== null && d.confidence <= 0.3, `confidence ${d?.confidence}`);
    });

    it('free wording the grammar missed is classified on the check', () => {
      const d = c.classify({ text: 'a the billing to uh', confidence: 1 }, { text: 'the router is broken', confidence: 0.7 });
      assert.equal(d?.intent, 'technical_support');
      assert.equal(d?.how, 'classifier');
      assert.ok(d !== null && d.confidence > 0.3);
    });

    it('an example phrase in the check itself decides, even against the grammar hypothesis', () => {
      const d = c.classify({ text: 'um billing', confidence: 1 }, { text: 'i want to upgrade my contract', confidence: 0.4 });
      assert.equal(d?.intent, 'sales');
      assert.equal(d?.confidence, 0.4);
    });
  });

  it('tokens drop pocketsphinx alternate markers and punctuation', () => {
    assert.deepEqual(tokens('READ(2) my Bill, please!'), ['read', 'my', 'bill', 'please']);
  });

  it('an intent without examples is never the answer', () => {
    const k = new SpeechIntentClassifier([{ name: 'general', examples: [] }, ...INTENTS]);
    assert.notEqual(k.classify({ text: 'general', confidence: 1 })?.intent, 'general');
  });
});
