/**
 * Regular expressions that come from configuration (a config file or a cloud push) run here, on
 * re2js — a pure-JS port of RE2 whose matching time is linear in the input, whatever the pattern.
 * V8's `RegExp` backtracks: `/^(a+)+$/` against 30 `a`s and a `!` froze the event loop for 21 s
 * (issue 13). Config is data, not code: it never reaches `new RegExp`.
 *
 * RE2 syntax is JavaScript's minus backreferences and lookaround (those need backtracking); such
 * patterns are refused when the config is validated, with a message naming the construct.
 */
import { RE2JS } from 're2js';

/** Longest pattern source accepted (config keys that hold patterns check it in their schema). */
export const MAX_PATTERN_LENGTH = 256;

/**
 * Longest input a pattern is tested against. Linear time still scales with the input; the values
 * tested (SIP To/From users) are short, so a longer one simply does not match.
 */
export const MAX_PATTERN_INPUT = 256;

export interface LinearPattern {
  /** The source as configured (without slashes and flags). */
  readonly source: string;
  readonly ignoreCase: boolean;
  /** True when the pattern matches somewhere in `input` (RegExp.test semantics: anchor it yourself). */
  test(input: string): boolean;
}

/** Thrown for a pattern that cannot be compiled; `message` says why, in words for the config's author. */
export class PatternError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatternError';
  }
}

// Checked before compiling so the message names the construct instead of RE2's parser error
// ("invalid escape sequence: `\1`" says little to someone who wrote a backreference).
// Both run on the source with every escape pair (`\x`) removed or kept as the escaped character,
// so `\\1` (a backslash, then 1) and `\(?=` (a literal parenthesis) are not mistaken for them.
const ESCAPE = /\\([\s\S])/g;
const BACKREFERENCE_ESCAPE = /^[1-9k]$/;
const LOOKAROUND = /\(\?<?[=!]/;

/**
 * Compiles `source` (the body of `/source/flags`) for linear-time matching. `flags` may be '' or
 * 'i'. Throws PatternError when the pattern is too long, uses backreferences or lookaround, or is
 * not valid RE2 syntax.
 */
export function compileLinearPattern(source: string, flags = ''): LinearPattern {
  if (source.length === 0) throw new PatternError('empty regular expression');
  if (source.length > MAX_PATTERN_LENGTH) throw new PatternError(`regular expression longer than ${MAX_PATTERN_LENGTH} characters`);
  if (flags !== '' && flags !== 'i') throw new PatternError(`unsupported flags "${flags}" (only i)`);
  if ([...source.matchAll(ESCAPE)].some((m) => BACKREFERENCE_ESCAPE.test(m[1]))) {
    throw new PatternError('backreferences (\\1, \\k<name>) are not supported: patterns run on a linear-time engine (RE2 syntax)');
  }
  if (LOOKAROUND.test(source.replace(ESCAPE, ''))) {
    throw new PatternError('lookahead/lookbehind ((?=, (?!, (?<=, (?<!) is not supported: patterns run on a linear-time engine (RE2 syntax)');
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, flags === 'i' ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (e) {
    throw new PatternError(`not a valid RE2 regular expression: ${e instanceof Error ? e.message : String(e)}`);
  }
  return {
    source,
    ignoreCase: flags === 'i',
    test: (input) => input.length <= MAX_PATTERN_INPUT && re.test(input),
  };
}

/** The reason `source` would be refused, or undefined when it compiles (for schema checks). */
export function linearPatternProblem(source: string, flags = ''): string | undefined {
  try {
    compileLinearPattern(source, flags);
    return undefined;
  } catch (e) {
    return e instanceof PatternError ? e.message : String(e);
  }
}
