/**
 * Configured keyword phrases found in recognised text: whole words, in order ("cancel" matches
 * "i want to cancel this" but not "cancellation"). Recognisers give lower-case words; the text is
 * normalised the same way anyway so a fork endpoint's punctuation does not hide a keyword.
 */
export class KeywordMatcher {
  private readonly phrases: Array<{ keyword: string; words: string[] }>;

  constructor(keywords: readonly string[]) {
    this.phrases = [...new Set(keywords.map((k) => k.trim().toLowerCase()).filter((k) => k.length > 0))].map((keyword) => ({ keyword, words: keyword.split(/\s+/) }));
  }

  get size(): number {
    return this.phrases.length;
  }

  /** The keywords (as configured) that occur in `text`, each once. */
  match(text: string): string[] {
    if (this.phrases.length === 0) return [];
    const words = normaliseWords(text);
    const found: string[] = [];
    for (const p of this.phrases) if (containsRun(words, p.words)) found.push(p.keyword);
    return found;
  }
}

export function normaliseWords(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z'\s]+/g, ' ').split(/\s+/).filter((w) => w.length > 0);
}

function containsRun(words: readonly string[], run: readonly string[]): boolean {
  outer: for (let i = 0; i + run.length <= words.length; i++) {
    for (let j = 0; j < run.length; j++) if (words[i + j] !== run[j]) continue outer;
    return true;
  }
  return false;
}
