export { Acd, type AcdAgentConfig, type AcdEvents, type AcdOptions, type AcdSnapshot, type CallPhase, type NewCall, type OverflowReason, type OverflowTarget, type QueueSnapshot, type RingCancelReason, type TransferTarget } from './acd';
export { Agent, canTransition, type AgentView, type TransitionOptions } from './agent';
export { AGENT_STATES, type AgentState } from './agent-state';
export { AgentDirectory, type AgentDirectoryOptions, type DirectoryAgent, type SessionEndReason } from './agent-directory';
export { realClock, type Clock, type Timer } from './clock';
export {
  acdConfigIssues,
  AGENT_ROLES,
  agentConfigSchema,
  agentsSchema,
  overflowEdges,
  overflowTargetSchema,
  queueConfigSchema,
  queueGraphIssues,
  queuesSchema,
  queueStrategies,
  SCRYPT_HASH_PATTERN,
  type AgentConfig,
  type AgentRole,
  type QueueConfig,
  type QueueStrategy,
} from './config';
export { AcdError, isAcdError, type AcdErrorCode } from './errors';
export { DEFAULT_SCRYPT, hashPassword, verifyPassword, type ScryptParams } from './password';
export { Queue, type QueuedCall } from './queue';
