import { readFileSync } from 'node:fs';
import { Counter, type Registry } from 'prom-client';
import { AudioHookSession, type ForkEndReason, type ForkProblem } from '../../media';
import { addressAllowed, type ForkConfig, type ForkEndpointConfig } from '../../media';
import type { TranscriptSink, TranscriptUtterance } from '../../media';
import type { BridgedCall, DeskCall } from '../calls/contract';
import { LogLimiter } from '../log-limiter';
import type { Logger } from '../logging';

export interface ForkServiceOptions {
  /** speech.fork, read per call: a config push changes the policy for the calls that follow. */
  config: () => ForkConfig | undefined;
  log: Logger;
  /**
   * Where a call's fork utterances go (gateway/transcripts). None, or undefined for a call: they
   * are counted and logged without their text (logs are not the place for what callers said).
   */
  sinkFor?: (call: DeskCall) => TranscriptSink | undefined;
  registry?: Registry;
}

interface Metrics {
  sessions: Counter<'endpoint' | 'outcome'>;
  problems: Counter<'endpoint' | 'kind'>;
  droppedSamples: Counter<'endpoint'>;
  utterances: Counter<'endpoint'>;
}

/**
 * Starts an AudioHook fork when a call is bridged and its queue/intent policy names an endpoint
 * (speech.fork: an intent's entry wins over its queue's, then `default`), taps the call's joint,
 * and closes the fork with the call. Whatever the endpoint does, the call never notices: the fork
 * failing is an event on the call record and a counter, nothing else.
 */
export class ForkService {
  private readonly active = new Map<DeskCall, AudioHookSession>();
  private readonly limited: LogLimiter;
  private readonly metrics: Metrics | undefined;
  private readonly tlsCache = new WeakMap<ForkEndpointConfig, { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string }>();
  /** Utterances that had no sink (counted, logged without text). */
  unsunk = 0;

  constructor(private readonly opts: ForkServiceOptions) {
    this.limited = new LogLimiter(opts.log, { burst: 5, intervalMs: 60_000 });
    const r = opts.registry;
    this.metrics = r
      ? {
          sessions: new Counter({ name: 'ccedge_speech_fork_sessions_total', help: 'AudioHook forks by endpoint and how they ended (end = normally)', labelNames: ['endpoint', 'outcome'] as const, registers: [r] }),
          problems: new Counter({ name: 'ccedge_speech_fork_problems_total', help: 'Fork endpoint misbehaviour that did not end the fork (bad-message, backpressure, utterance-flood, sink-failed)', labelNames: ['endpoint', 'kind'] as const, registers: [r] }),
          droppedSamples: new Counter({ name: 'ccedge_speech_fork_dropped_samples_total', help: 'Audio samples per channel dropped because the endpoint did not keep up', labelNames: ['endpoint'] as const, registers: [r] }),
          utterances: new Counter({ name: 'ccedge_speech_fork_utterances_total', help: 'Final transcript utterances received from fork endpoints', labelNames: ['endpoint'] as const, registers: [r] }),
        }
      : undefined;
  }

  get activeCount(): number {
    return this.active.size;
  }

  /** The endpoint a call forks to, or null. */
  endpointFor(queue: string | undefined, intent: string | null | undefined): string | null {
    const cfg = this.opts.config();
    if (!cfg) return null;
    const pick = (intent ? cfg.intents[intent] : undefined) ?? (queue !== undefined ? cfg.queues[queue] : undefined) ?? cfg.default;
    return pick === undefined || pick === 'none' ? null : pick;
  }

  /** An AgentDesk `bridged` listener. A transferred call keeps its fork (the tap follows the joint). */
  readonly bridged = (b: BridgedCall): void => {
    const { call } = b;
    if (call.closed || this.active.has(call)) return;
    const cfg = this.opts.config();
    const name = this.endpointFor(b.queue, b.intent);
    if (!cfg || name === null) return;
    const endpoint = cfg.endpoints[name];
    const source = call.tapSource?.();
    if (!endpoint || !source) return;
    let tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string } | undefined;
    try {
      tls = this.tlsFor(endpoint);
    } catch (err) {
      call.log.error({ err, endpoint: name, code: 'SPEECH_FORK_FAILED' }, 'fork endpoint certificate files unreadable: no fork; the call goes on');
      this.metrics?.sessions.inc({ endpoint: name, outcome: 'failed' });
      return;
    }
    const sink = this.opts.sinkFor?.(call) ?? this.countingSink(call, name);
    const session = new AudioHookSession({
      endpointName: name,
      url: endpoint.url,
      apiKey: endpoint.apiKey,
      tls,
      organizationId: endpoint.organizationId,
      maxBufferedBytes: endpoint.maxBufferedKb * 1024,
      openTimeoutMs: endpoint.openTimeoutMs,
      pingMs: endpoint.pingS * 1000,
      codec: call.codec,
      callId: call.id,
      participant: {
        ani: call.caller.private ? 'anonymous' : call.caller.number,
        aniName: call.caller.private ? '' : (call.caller.name ?? ''),
        dnis: call.called ?? '',
      },
      sink: {
        utterance: (u: TranscriptUtterance): void => {
          this.metrics?.utterances.inc({ endpoint: name });
          sink.utterance(u);
        },
      },
      addressAllowed: (addr) => addressAllowed(addr, cfg.allow),
    });
    this.active.set(call, session);
    session.on('opened', (channels) => {
      call.log.info({ endpoint: name, session: session.id, channels }, 'media fork open');
      call.record('speech.fork-started', { endpoint: name, session: session.id, channels: channels.join(',') });
    });
    session.on('problem', (kind: ForkProblem, detail: string) => {
      this.metrics?.problems.inc({ endpoint: name, kind });
      this.limited.warn(`${name}:${kind}`, { callId: call.id, endpoint: name, kind, detail, code: 'SPEECH_FORK_FAILED' }, 'fork endpoint misbehaves; the call goes on');
    });
    session.once('ended', (reason: ForkEndReason, detail: string, stats) => {
      this.active.delete(call);
      source.removeTap(session.tap);
      this.metrics?.sessions.inc({ endpoint: name, outcome: reason });
      this.metrics?.droppedSamples.inc({ endpoint: name }, stats.samplesDropped);
      const fields = { endpoint: name, session: session.id, reason, detail, ...stats };
      if (reason === 'end') call.log.info(fields, 'media fork ended');
      else this.limited.warn(`${name}:ended:${reason}`, { callId: call.id, ...fields, code: 'SPEECH_FORK_FAILED' }, 'media fork ended by the endpoint; the call goes on');
      // On the call record while the call lasts (a fork the endpoint ended); the call's own end is in the log.
      call.record('speech.fork-ended', {
        endpoint: name,
        reason,
        framesSent: stats.framesSent,
        framesDropped: stats.framesDropped,
        samplesDropped: stats.samplesDropped,
        badMessages: stats.badMessages,
        utterances: stats.utterances,
      });
    });
    call.once('closed', () => void session.close('end'));
    source.addTap(session.tap);
    session.start();
  };

  /** Daemon stop: every fork closes (calls closing do the same; this covers the rest). */
  async close(): Promise<void> {
    const sessions = [...this.active.values()];
    this.active.clear();
    await Promise.all(sessions.map((s) => s.close('end')));
    this.limited.flush(true);
  }

  private tlsFor(e: ForkEndpointConfig): { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string } | undefined {
    if (!e.tls) return undefined;
    let t = this.tlsCache.get(e);
    if (!t) {
      t = {
        ca: e.tls.caFile ? readFileSync(e.tls.caFile) : undefined,
        cert: e.tls.certFile ? readFileSync(e.tls.certFile) : undefined,
        key: e.tls.keyFile ? readFileSync(e.tls.keyFile) : undefined,
        servername: e.tls.servername,
      };
      this.tlsCache.set(e, t);
    }
    return t;
  }

  private countingSink(call: DeskCall, endpoint: string): TranscriptSink {
    return {
      utterance: (u) => {
        this.unsunk++;
        call.log.debug({ endpoint, speaker: u.speaker, startMs: u.startMs, endMs: u.endMs, confidence: u.confidence, chars: u.text.length }, 'fork utterance (no transcript sink)');
      },
    };
  }
}
