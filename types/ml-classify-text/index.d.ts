// Types for npm `ml-classify-text` 2.0.1 (n-gram bag + cosine similarity), which ships none. Only
// what ccedge uses is described.
declare module 'ml-classify-text' {
  export interface ClassifierOptions {
    nGramMin?: number;
    nGramMax?: number;
  }

  export interface Prediction {
    readonly label: string;
    /** Cosine similarity of the text's n-gram vector and the label's, 0..1. */
    readonly confidence: number;
  }

  export class Classifier {
    constructor(options?: ClassifierOptions);
    train(input: string | string[], label: string): this;
    /** Best first; labels below minimumConfidence (default 0.2) are left out. */
    predict(input: string, maxMatches?: number, minimumConfidence?: number): Prediction[];
  }
}
