import { compileDnisMatch, type DnisMatcher, type ForwardRuleConfig } from './config';

/** Where a forwarded call goes: the trunk, the number dialled on it, and the rule that decided. */
export interface ForwardTarget {
  trunk: string;
  number: string;
  rule: string;
}

/**
 * routing.forward: which calls are forwarded to a trunk number instead of being queued, by the
 * called number (To user) — an exact rule, else the longest prefix, else the first regex.
 */
export class ForwardRules {
  private readonly exact = new Map<string, ForwardRuleConfig>();
  private readonly prefixes: Array<{ matcher: DnisMatcher; rule: ForwardRuleConfig }> = [];
  private readonly regexes: Array<{ matcher: DnisMatcher; rule: ForwardRuleConfig }> = [];

  constructor(rules: readonly ForwardRuleConfig[]) {
    for (const rule of rules) {
      const matcher = compileDnisMatch(rule.match);
      if (matcher.kind === 'exact') {
        if (!this.exact.has(matcher.text)) this.exact.set(matcher.text, rule);
      } else if (matcher.kind === 'prefix') this.prefixes.push({ matcher, rule });
      else this.regexes.push({ matcher, rule });
    }
    this.prefixes.sort((a, b) => b.matcher.text.length - a.matcher.text.length);
  }

  get size(): number {
    return this.exact.size + this.prefixes.length + this.regexes.length;
  }

  /** The forward target for a called number, or undefined (the call is queued as usual). */
  match(toUser: string | null): ForwardTarget | undefined {
    if (toUser === null || this.size === 0) return undefined;
    const rule = this.exact.get(toUser) ?? this.prefixes.find((r) => r.matcher.test(toUser))?.rule ?? this.regexes.find((r) => r.matcher.test(toUser))?.rule;
    return rule ? { trunk: rule.trunk, number: rule.number ?? toUser, rule: rule.match } : undefined;
  }
}
