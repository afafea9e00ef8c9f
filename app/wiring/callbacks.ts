import type { AgentDesk } from '../../gateway/agents/agent-desk';
import { CallbackCall } from '../../gateway/callbacks/callback-call';
import { CallbackScheduler } from '../../gateway/callbacks/callback-scheduler';
import { CallbackStore } from '../../gateway/callbacks/callback-store';
import type { CallManager } from '../../gateway/calls/call-manager';
import type { Config } from '../../gateway/config/schema';
import type { Logger } from '../../gateway/logging';
import type { Metrics } from '../../gateway/metrics';
import type { CallStore } from '../../gateway/store/call-store';
import type { Db } from '../../gateway/store/db';
import type { CallsWired } from './calls';

export interface CallbacksWiring {
  config: Config;
  db: Db;
  log: Logger;
  metrics: Metrics;
  store: CallStore;
  calls: CallManager;
  /** The clock and hold audio inbound calls use. */
  media: CallsWired['media'];
  desk: AgentDesk;
  /** Where a callback call is kept while it lives (call monitoring finds it there). */
  liveCallbacks: Map<string, CallbackCall>;
}

/**
 * Callbacks a caller asked for: the scheduler dials them through the trunk's outbound leg and
 * queues them on the agent desk, which offers them. Not closed here: the daemon stops it first,
 * before the calls end.
 */
export function wireCallbacks(w: CallbacksWiring): CallbackScheduler {
  const { config, log, metrics, store, desk, liveCallbacks } = w;
  const callbackStore = new CallbackStore(w.db);
  const callbacks: CallbackScheduler = new CallbackScheduler({
    config,
    store: callbackStore,
    log: log.child({ component: 'callbacks' }),
    enqueue: (call, queue, queuedAt) => desk.enqueue(call, queue, queuedAt),
    makeCall: (record) => {
      const call = new CallbackCall(record, {
        config,
        calls: store,
        callbacks: callbackStore,
        metrics,
        clock: w.media.clock,
        holdFrames: w.media.holdFrames,
        trunk: callbacks.trunk as string,
        // The same outbound leg as forwards and REFER: the trunk's outbound address, a pool port.
        dialOutbound: w.calls.outboundDialer,
        media: w.calls.placeMedia(),
        log,
      });
      liveCallbacks.set(call.id, call);
      call.once('closed', () => liveCallbacks.delete(call.id));
      return call;
    },
  });
  desk.offerCallbacks(callbacks);
  return callbacks;
}
