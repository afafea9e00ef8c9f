/**
 * An agent's state as the ACD keeps it (acd/agent.ts holds the legal moves). Its own file, free
 * of imports, because the pages, the KPIs and the supervisor all read it: the agent page's wire
 * protocol re-exports it, and kpi/ takes it from here rather than from the protocol (which
 * imports kpi's dispositions).
 */
export const AGENT_STATES = ['offline', 'available', 'ringing', 'on-call', 'wrap-up', 'away'] as const;
export type AgentState = (typeof AGENT_STATES)[number];
