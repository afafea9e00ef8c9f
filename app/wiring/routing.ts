import { isDeepStrictEqual } from 'node:util';
import type { Acd } from '../../gateway/acd/acd';
import type { AgentDesk } from '../../gateway/agents/agent-desk';
import type { CallManager } from '../../gateway/calls/call-manager';
import { assignHotSections } from '../../gateway/config/live-config';
import type { Config } from '../../gateway/config/schema';
import type { Logger } from '../../gateway/logging';
import type { PeopleService } from '../../gateway/people/people-service';
import { Router } from '../../gateway/routing/router';
import type { CloudLink } from './cloud';

export interface RoutingWiring {
  config: Config;
  log: Logger;
  calls: CallManager;
  desk: AgentDesk;
  acd: Acd;
  people: PeopleService;
  cloud: Pick<CloudLink, 'pruneQueueTopics'>;
}

/**
 * Answered calls go to the agent desk through the router. Returns how a config pushed by the cloud
 * is put in place: everything that can refuse (the new router, a change of people) runs first,
 * then the swap happens in one synchronous step.
 */
export function wireRouting(w: RoutingWiring): (next: Config) => Promise<void> {
  const { config, log, people } = w;
  const routing = { router: new Router({ config }), acd: w.acd };
  w.calls.routeAnsweredCallsTo(w.desk, routing);
  return async (next) => {
    // Everything that can refuse runs first; then the swap happens in one synchronous step.
    const router = new Router({ config: next });
    // Only what the push changed: the running agents keep their hashes (a file's clear
    // passwords are hashed by the people service, never saved as they are).
    const agentsChanged = !isDeepStrictEqual(next.agents, config.agents);
    const queuesChanged = !isDeepStrictEqual(next.queues, config.queues);
    if (agentsChanged || queuesChanged) {
      await people.change('cloud', (p) => ({ people: { ...p, agents: agentsChanged ? next.agents : p.agents, queues: queuesChanged ? next.queues : p.queues } }), { against: next, saveOnlyIfLive: true });
    }
    assignHotSections(config, next);
    routing.router = router;
    log.info({ queues: next.queues.map((q) => q.name), intents: next.intents.length }, 'config from the cloud is now running');
    w.cloud.pruneQueueTopics();
  };
}
