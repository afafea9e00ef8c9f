export {
  compileDnisMatch,
  formatIssues,
  intentSchema,
  intentsSchema,
  routingConfigIssues,
  routingConfigSchema,
  routingConfigShape,
  routingSchema,
  vipCallersSchema,
  type ConfigIssue,
  type DnisMatcher,
  type DnisMatchKind,
  type IntentConfig,
  type RoutingConfig,
  type RoutingRulesConfig,
} from './config';
export { headerValue, IntentResolver, type IgnoredStep, type IntentClassifier, type IntentResolverOptions, type IntentResult, type IntentSource, type RoutingCall, type SpeechRouting } from './intent';
export { Router, type RouteDecision, type RouterOptions } from './router';
export { routingCallFromInvite } from './sip-call';
export { ForwardRules, type ForwardTarget } from './forward';
