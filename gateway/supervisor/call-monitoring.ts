import { EventEmitter } from 'node:events';
import { Gauge, type Registry } from 'prom-client';
import type { WebRtcEndpoint } from '../../media';
import { legFor, type WebRtcSite } from '../agents/webrtc-site';
import type { Call } from '../calls/call';
import type { CallEndCause, ParticipantRole } from '../calls/contract';
import { isCallError } from '../calls/errors';
import type { Logger } from '../logging';
import { MonitoringError, type Monitoring, type MonitorMode } from './monitoring';

/** What each mode is in the call's joint (media/joint decides who hears whom by role). */
const ROLE_OF: Record<MonitorMode, ParticipantRole> = { listen: 'listener', whisper: 'coach', barge: 'barge' };

export interface CallMonitoringOptions {
  /** The live call with this id (inbound, forwarded or callback), if any. */
  findCall: (callId: string) => Call | undefined;
  /** The WebRTC legs' host interfaces and UDP ports: the agent desk's. */
  webrtc: WebRtcSite;
  log: Logger;
  /** The page must answer the offer within this (default 20 s, like the agent desk). */
  mediaSetupS?: number;
  registry?: Registry;
}

interface Session {
  supervisor: string;
  call: Call;
  legId: string;
  leg: WebRtcEndpoint;
  /** Until the page answered: a page that never answers must not keep the leg and its ports. */
  setupTimer: NodeJS.Timeout | null;
  onClosed: (cause: CallEndCause) => void;
  onLegRemoved: (legId: string) => void;
}

type Events = { ended: [supervisor: string, callId: string, reason: string] };

/**
 * Monitoring on the call model: a supervisor's WebRTC leg joins the call's media joint as
 * listener (Listen), coach (Whisper: only the agent hears the supervisor) or barge (all hear all);
 * a mode change is a role change on the same leg. A session ends on Stop (`stopped`), the call's
 * end (`call-ended`), or the leg's media failing (`media-failed`); the supervisor desk ends it when
 * the page goes away. Monitors are not parties: they never count against calls.maxParties.
 */
export class CallMonitoring extends EventEmitter<Events> implements Monitoring {
  private readonly sessions = new Map<string, Session>();
  private readonly log: Logger;
  private readonly gauge: Gauge | undefined;

  constructor(private readonly opts: CallMonitoringOptions) {
    super();
    this.log = opts.log.child({ component: 'monitoring' });
    this.gauge = opts.registry
      ? new Gauge({ name: 'ccedge_monitor_sessions_active', help: 'Supervisor monitoring legs on calls (listen, whisper, barge)', registers: [opts.registry] })
      : undefined;
  }

  /** Sessions open now (tests, metrics). */
  get active(): number {
    return this.sessions.size;
  }

  async start(supervisor: string, callId: string, mode: MonitorMode): Promise<{ sdp: string } | null> {
    const k = key(supervisor, callId);
    const existing = this.sessions.get(k);
    if (existing) {
      try {
        existing.call.setRole(existing.legId, ROLE_OF[mode]);
      } catch (err) {
        throw new MonitoringError('MONITOR_UNAVAILABLE', isCallError(err) ? err.message : 'the mode cannot be changed');
      }
      existing.call.log.info({ supervisor, mode }, 'supervisor changed monitoring mode');
      return null;
    }
    const call = this.opts.findCall(callId);
    if (!call || call.closed) throw new MonitoringError('MONITOR_NO_SUCH_CALL', 'the call has ended');
    const leg = legFor(this.opts.webrtc, call);
    let legId: string;
    try {
      legId = call.addAgent(supervisor, leg, { role: ROLE_OF[mode] });
    } catch (err) {
      // addAgent closed the leg.
      throw new MonitoringError('MONITOR_UNAVAILABLE', isCallError(err) ? err.message : 'the call cannot be monitored');
    }
    const session: Session = {
      supervisor,
      call,
      legId,
      leg,
      setupTimer: null,
      onClosed: () => this.end(k, 'call-ended'),
      onLegRemoved: (removed) => {
        if (removed === legId) this.end(k, 'media-failed');
      },
    };
    this.sessions.set(k, session);
    this.gauge?.set(this.sessions.size);
    call.once('closed', session.onClosed);
    call.on('legRemoved', session.onLegRemoved);
    session.setupTimer = setTimeout(() => {
      session.setupTimer = null;
      call.log.warn({ supervisor, code: 'WEBRTC_FAILED' }, "the supervisor page did not answer the monitoring offer");
      this.stopWith(k, 'media-failed');
    }, (this.opts.mediaSetupS ?? 20) * 1000);
    call.record('call.monitor-started', { supervisor, mode });
    try {
      const sdp = await leg.createOffer();
      if (this.sessions.get(k) !== session) throw new MonitoringError('MONITOR_NO_SUCH_CALL', 'the call has ended');
      return { sdp };
    } catch (err) {
      if (this.sessions.get(k) === session) {
        call.log.error({ err, supervisor, code: 'WEBRTC_FAILED' }, 'cannot create the monitoring offer');
        this.stopWith(k, 'media-failed');
      }
      throw err instanceof MonitoringError ? err : new MonitoringError('MONITOR_UNAVAILABLE', 'the monitoring audio could not be set up');
    }
  }

  async accept(supervisor: string, callId: string, sdp: string): Promise<void> {
    const session = this.sessions.get(key(supervisor, callId));
    if (!session) throw new MonitoringError('MONITOR_NO_SUCH_CALL', 'not monitoring this call');
    if (session.setupTimer) clearTimeout(session.setupTimer);
    session.setupTimer = null;
    // From here the leg's own ICE/DTLS watchdog ends a session whose media never comes up.
    await session.leg.acceptAnswer(sdp);
  }

  stop(supervisor: string, callId: string): void {
    this.stopWith(key(supervisor, callId), 'stopped');
  }

  /** Ends every session (daemon stop). */
  close(): void {
    for (const k of [...this.sessions.keys()]) this.stopWith(k, 'stopped');
  }

  /** Takes the leg off the call, then reports the end. */
  private stopWith(k: string, reason: string): void {
    const session = this.sessions.get(k);
    if (!session) return;
    this.detach(k, session);
    try {
      // 'agent-hangup': the person on this leg (the supervisor) left; the call goes on.
      if (!session.call.closed) session.call.removeLeg(session.legId, 'agent-hangup');
    } catch (err) {
      // Already gone (CALL_UNKNOWN_LEG): nothing left to remove; the WebRTC leg is closed anyway.
      if (!isCallError(err)) this.log.warn({ err, callId: session.call.id }, 'monitoring leg removal failed');
      void session.leg.close();
    }
    this.report(session, reason);
  }

  /** The call or the leg went by itself: only forget and report. */
  private end(k: string, reason: string): void {
    const session = this.sessions.get(k);
    if (!session) return;
    this.detach(k, session);
    void session.leg.close();
    this.report(session, reason);
  }

  private detach(k: string, session: Session): void {
    this.sessions.delete(k);
    this.gauge?.set(this.sessions.size);
    if (session.setupTimer) clearTimeout(session.setupTimer);
    session.setupTimer = null;
    session.call.off('closed', session.onClosed);
    session.call.off('legRemoved', session.onLegRemoved);
  }

  private report(session: Session, reason: string): void {
    session.call.record('call.monitor-ended', { supervisor: session.supervisor, reason });
    session.call.log.info({ supervisor: session.supervisor, reason }, 'supervisor monitoring ended');
    this.emit('ended', session.supervisor, session.call.id, reason);
  }
}

function key(supervisor: string, callId: string): string {
  return `${supervisor}\n${callId}`;
}
