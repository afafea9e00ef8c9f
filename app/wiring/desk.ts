import { AgentDesk } from '../../gateway/agents/agent-desk';
import { SessionHub } from '../../gateway/agents/agent-sessions';
import type { CallbackCall } from '../../gateway/callbacks/callback-call';
import type { CallManager } from '../../gateway/calls/call-manager';
import { RecordingService } from '../../gateway/recording/recording-service';
import { AgentStore } from '../../gateway/store/agent-store';
import type { CallStore } from '../../gateway/store/call-store';
import { SupervisorAuditStore } from '../../gateway/store/supervisor-audit-store';
import { CallMonitoring } from '../../gateway/supervisor/call-monitoring';
import { supervisorClientMessage, type SupervisorClientMessage, type SupervisorServerMessage } from '../../gateway/supervisor/protocol';
import { SupervisorDesk } from '../../gateway/supervisor/supervisor-desk';
import type { TranscriptService } from '../../gateway/transcripts/transcript-service';
import type { SpeechEngine } from '../../media';
import { PortPool } from '../../media';
import type { Vault } from '../../vault';
import { webrtcInterfaces } from './addresses';
import type { AgentsWired } from './agents';
import type { CloudLink } from './cloud';
import { wireSpeech } from './speech';
import type { WiringContext } from './context';

export interface DeskWiring extends WiringContext {
  cloud: Pick<CloudLink, 'sync' | 'writeEvent'>;
  vault: Vault;
  store: CallStore;
  calls: CallManager;
  agents: Pick<AgentsWired, 'directory' | 'acd' | 'kpiRecorder' | 'sessions'>;
  /** The speech menus' engine when the IVR has one (live transcripts share it). */
  ivrEngine: SpeechEngine | undefined;
  /** Media worker threads running: each gathers ICE on its own slice of webrtc.ports. */
  mediaWorkers: number;
}

export interface DeskWired {
  desk: AgentDesk;
  recording: RecordingService;
  transcripts: TranscriptService;
  /** The one on-site engine the speech menus and live transcripts share (closed after the calls). */
  speechEngine: SpeechEngine | undefined;
  supervisorHub: SessionHub<SupervisorClientMessage, SupervisorServerMessage>;
  supervisorAudit: SupervisorAuditStore;
  /** Callback calls while they live (they are not CallManager's): monitoring finds them here, the scheduler adds them. */
  liveCallbacks: Map<string, CallbackCall>;
}

/**
 * Where calls meet people: recording, live transcripts and the media fork (wiring/speech.ts), the
 * agent desk (queued calls to WebRTC agents), and the supervisors' sessions, call monitoring and
 * desk. Recording and transcripts are not closed here: the daemon ends the calls first.
 */
export function wireDesk(w: DeskWiring): DeskWired {
  const { config, db, log, metrics, closer, cloud, store } = w;
  const { directory, acd, sessions } = w.agents;
  const recording = new RecordingService(w.vault, () => config.recording, log.child({ component: 'recording' }), {
    alarm: (state, freeBytes, minFreeBytes) => {
      cloud.writeEvent({ type: 'recording.alarm', data: { alarm: 'disk-low', state, freeBytes, minFreeBytes } }, 'recording alarm');
    },
    stopped: (call, agent) => sessions.send(agent, { v: 1, type: 'recording', callId: call.id, active: false, paused: false }),
  });
  const { engine: speechEngine, transcripts, fork } = wireSpeech({
    config,
    vault: w.vault,
    log,
    metrics,
    closer,
    ivrEngine: w.ivrEngine,
    desk: {
      push: (agent, callId, u) => sessions.send(agent, { v: 1, type: 'transcript', callId, speaker: u.speaker, text: u.text, startMs: u.startMs, endMs: u.endMs, sentiment: u.sentiment, quality: u.quality }),
      recordAfterClose: (callId, type, data) => store.update(callId, {}, type, data),
    },
  });
  const webrtcLegs = { interfaces: webrtcInterfaces(config), portRange: PortPool.parseRange(config.webrtc.ports), workers: w.mediaWorkers };
  const desk = new AgentDesk({
    acd,
    sessions,
    agentStore: new AgentStore(db, cloud.sync),
    log,
    webrtc: webrtcLegs,
    reconnectGraceS: config.agentSessions.reconnectGraceS,
    kpi: w.agents.kpiRecorder,
    recording,
    desk: config.agentDesk,
    callStore: store,
    registry: metrics.registry,
    maxParties: config.calls.maxParties,
    // Transcripts first: a fork endpoint's transcript events feed the transcript it opened.
    bridged: [transcripts.bridged, fork.bridged],
  });
  closer.defer('agent desk', () => desk.close());
  // Supervisors log in through the same door as agents (shared throttling and limits) at /supervisor.
  const supervisorHub = new SessionHub<SupervisorClientMessage, SupervisorServerMessage>(directory, log, {
    role: 'supervisor',
    schema: supervisorClientMessage,
    metrics,
    shareWith: sessions,
  });
  closer.defer('supervisor sessions', () => supervisorHub.close());
  const supervisorAudit = new SupervisorAuditStore(db, cloud.sync);
  // Callbacks are not CallManager's: monitoring finds them here while they live.
  const liveCallbacks = new Map<string, CallbackCall>();
  const monitoring = new CallMonitoring({ findCall: (id) => w.calls.get(id) ?? liveCallbacks.get(id), webrtc: webrtcLegs, log, registry: metrics.registry });
  const supervisorDesk = new SupervisorDesk({
    monitoring,
    acd,
    hub: supervisorHub,
    agents: sessions,
    callerPrivate: (id) => desk.callerPrivate(id),
    awayReasons: config.agentDesk.awayReasons,
    audit: supervisorAudit,
    config: config.supervisor,
    displayName: (n) => directory.get(n)?.displayName,
    log,
  });
  closer.defer('supervisor desk', () => supervisorDesk.close());
  return { desk, recording, transcripts, speechEngine, supervisorHub, supervisorAudit, liveCallbacks };
}
