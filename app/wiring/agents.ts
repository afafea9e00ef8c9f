import { Acd } from '../../gateway/acd/acd';
import { AgentDirectory } from '../../gateway/acd/agent-directory';
import { AgentSessions } from '../../gateway/agents/agent-sessions';
import { kpiOptions } from '../../gateway/kpi/config';
import { KpiRecorder } from '../../gateway/kpi/kpi-recorder';
import { KpiService, registerKpiMetrics } from '../../gateway/kpi/kpi-service';
import { KpiStore } from '../../gateway/kpi/kpi-store';
import { Semaphore } from '../../gateway/net/semaphore';
import type { People } from '../../gateway/people/people-edit';
import { PeopleService } from '../../gateway/people/people-service';
import type { PeopleStore } from '../../gateway/people/people-store';
import { AgentPasswordStore } from '../../gateway/store/agent-password-store';
import type { CloudLink } from './cloud';
import type { WiringContext } from './context';

export interface AgentsWiring extends WiringContext {
  peopleStore: PeopleStore;
  storedPeople: People | undefined;
  /** Queue events and live queue snapshots go to the cloud; a change of queues clears removed ones' snapshots. */
  cloud: Pick<CloudLink, 'sync' | 'writeEvent' | 'queueTopics' | 'pruneQueueTopics'>;
}

export interface AgentsWired {
  directory: AgentDirectory;
  acd: Acd;
  people: PeopleService;
  kpiRecorder: KpiRecorder;
  kpi: KpiService;
  sessions: AgentSessions;
}

/**
 * Who works here and how their work is counted: the agent directory (logins, password hashing),
 * the ACD, the live people and queues service, the KPI recorder and service (queue snapshots go to
 * the cloud live) and the agents' sessions (their WebSocket door).
 */
export async function wireAgents(w: AgentsWiring): Promise<AgentsWired> {
  const { config, db, log, metrics, closer, cloud } = w;
  // One gate for every scrypt of the process: logins and config-password hashing share it, so
  // at most `concurrency` libuv pool threads hash and the rest stay free for sqlite3.
  const hashGate = new Semaphore({ concurrency: config.agentSessions.passwordHashing.concurrency, maxQueue: config.agentSessions.passwordHashing.maxQueue });
  const agentPasswords = new AgentPasswordStore(db);
  const directory = await AgentDirectory.create(config.agents, {
    sessionIdleS: config.agentSessions.idleTimeoutS,
    hashGate,
    changedPasswords: { initial: await agentPasswords.all(), save: (agent, changed) => agentPasswords.save(agent, changed) },
  });
  closer.defer('agent directory', () => directory.close());
  const acd = new Acd({ queues: config.queues, agents: directory.list() });
  closer.defer('acd', () => acd.close());
  const people = new PeopleService({ config, store: w.peopleStore, acd, directory, log: log.child({ component: 'people' }), changed: () => cloud.pruneQueueTopics() }, w.storedPeople);
  acd.on('queuePaused', (queue, paused) => {
    cloud.writeEvent({ type: 'queue.paused', data: { queue, paused } }, 'queue pause');
  });
  const kpiStore = new KpiStore(db);
  await kpiStore.closeOpenWrapUps();
  const kpiRecorder = new KpiRecorder({ store: kpiStore, acd, log: log.child({ component: 'kpi' }) });
  closer.defer('kpi recorder', () => kpiRecorder.flush());
  const kpi = new KpiService({
    store: kpiStore,
    recorder: kpiRecorder,
    snapshot: () => acd.snapshot(),
    agentQueues: (n) => config.agents.find((a) => a.name === n)?.queues ?? null,
    window: config.kpi.window,
    kpi: kpiOptions(config.kpi),
    targets: config.kpi.targets,
    log,
  });
  await kpi.start();
  closer.defer('kpi', () => kpi.close());
  registerKpiMetrics(metrics.registry, kpi);
  kpi.on('update', (snapshot) => {
    // Only configured queues: a snapshot taken before a push removed a queue must not bring
    // back the retained message that the push just cleared.
    const live = cloud.queueTopics();
    for (const q of snapshot.queues) if (live.has(`queues/${q.name}`)) cloud.sync.publishLive(`queues/${q.name}`, q, { qos: 1, retain: true });
  });
  const sessions = new AgentSessions(directory, log, { config: config.agentSessions, metrics });
  closer.defer('agent sessions', () => sessions.close());
  return { directory, acd, people, kpiRecorder, kpi, sessions };
}
