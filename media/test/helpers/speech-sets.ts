/**
 * The phrase sets the speech tests and the speech benchmark share: intents with the key phrases a
 * grammar is built from, answers a caller gives (carrier words around a key phrase), and sentences
 * for dictation. All words are in pocketsphinx's en-us dictionary.
 */
export interface IntentSet {
  name: string;
  phrases: string[];
  /** What callers say, each containing one of the phrases. */
  answers: string[];
}

export const INTENT_SETS: IntentSet[] = [
  {
    name: 'billing',
    phrases: ['pay my bill', 'billing question', 'my invoice'],
    answers: ['I would like to pay my bill', 'I have a billing question', 'there is a problem with my invoice'],
  },
  {
    name: 'fraud',
    phrases: ['card was stolen', 'lost my card', 'report fraud'],
    answers: ['my card was stolen yesterday', 'I lost my card', 'I want to report fraud'],
  },
  {
    name: 'balance',
    phrases: ['account balance', 'my balance'],
    answers: ['what is my account balance', 'can you tell me my balance'],
  },
  {
    name: 'agent',
    phrases: ['speak to an agent', 'talk to someone', 'representative'],
    answers: ['I want to speak to an agent', 'can I talk to someone please', 'representative'],
  },
  {
    name: 'cancel',
    phrases: ['cancel my subscription', 'close my account'],
    answers: ['please cancel my subscription', 'I want to close my account'],
  },
];

export const DICTATION_SENTENCES: string[] = [
  'I would like to pay my bill',
  'my card was stolen yesterday',
  'can I speak to someone about my order',
  'the package never arrived at my house',
  'please send me a new statement',
];
