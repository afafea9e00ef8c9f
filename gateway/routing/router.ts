/**
 * Routing decision for one call: intent (see intent.ts) → the intent's queue and the call's base
 * priority (intent priority, plus routing.vipBoost for a caller matching vipCallers). The ACD
 * then ages the priority while the call waits (queue agingPerMinute).
 */
import type { Clock } from '../acd/clock';
import type { RoutingConfig } from './config';
import { IntentResolver, type IgnoredStep, type IntentClassifier, type IntentSource, type RoutingCall, type SpeechRouting } from './intent';

export interface RouteDecision {
  intent: string;
  source: IntentSource;
  /** Which rule decided (DNIS match, caller prefix, header name, classifier name), if any. */
  rule?: string;
  queue: string;
  /** Base priority for Acd.enqueue: intent priority + VIP boost. */
  priority: number;
  vip: boolean;
  /** Values that were offered but not used (unknown intent, classifier timeout/error): log them. */
  ignored: IgnoredStep[];
  /** Source `speech`: what the speech menu recognised (stays on site) and its confidence. */
  speech?: SpeechRouting;
}

export interface RouterOptions {
  config: RoutingConfig;
  classifiers?: readonly IntentClassifier[];
  clock?: Clock;
}

export class Router {
  private readonly resolver: IntentResolver | null;
  private readonly intents = new Map<string, { queue: string; priority: number }>();
  private readonly vipPrefixes: readonly string[];
  private readonly vipBoost: number;

  constructor(opts: RouterOptions) {
    const { config } = opts;
    for (const i of config.intents) this.intents.set(i.name, { queue: i.queue, priority: i.priority });
    this.resolver =
      config.intents.length === 0
        ? null
        : new IntentResolver({ intents: config.intents.map((i) => i.name), routing: config.routing, classifiers: opts.classifiers, clock: opts.clock });
    this.vipPrefixes = [...config.vipCallers];
    this.vipBoost = config.routing.vipBoost;
  }

  /** False when no intents are configured: the gateway keeps using calls.queue. */
  get enabled(): boolean {
    return this.resolver !== null;
  }

  isVip(fromUser: string | null): boolean {
    return fromUser !== null && this.vipPrefixes.some((p) => fromUser.startsWith(p));
  }

  /** Decides intent, queue and priority; never rejects. Throws only when routing is not enabled. */
  async route(call: RoutingCall): Promise<RouteDecision> {
    if (!this.resolver) throw new Error('routing is not configured (no intents)');
    const r = await this.resolver.resolve(call);
    const intent = this.intents.get(r.intent) as { queue: string; priority: number };
    const vip = this.isVip(call.fromUser);
    const decision: RouteDecision = { intent: r.intent, source: r.source, queue: intent.queue, priority: intent.priority + (vip ? this.vipBoost : 0), vip, ignored: r.ignored };
    if (r.rule !== undefined) decision.rule = r.rule;
    if (r.source === 'speech' && call.ivrSpeech) decision.speech = { ...call.ivrSpeech };
    return decision;
  }
}
