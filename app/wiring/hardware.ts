import type { CallManager } from '../../gateway/calls/call-manager';
import { hwCloudEvent } from '../../gateway/hw-events';
import type { SipServer } from '../../gateway/sip/sip-server';
import { HwService } from '../../hw';
import { webrtcInterfaces } from './addresses';
import type { CloudLink } from './cloud';
import type { WiringContext } from './context';

export interface HardwareWiring extends WiringContext {
  cloud: Pick<CloudLink, 'sync' | 'writeEvent'>;
  calls: CallManager;
  sip: SipServer;
}

/**
 * The appliance's hardware (hw/): alarms and faults as cloud events, health published live, the
 * front panel, and the watchdog, fed only while SIP and the database answer. Started by the daemon.
 */
export function wireHardware(w: HardwareWiring): HwService {
  const { config, db, log, cloud, calls, sip } = w;
  const { dahdiDir, ...hwConfig } = config.hw;
  const hw = new HwService({
    config: hwConfig,
    dataDir: config.dataDir,
    dahdiDir,
    log: log.child({ component: 'hw' }),
    // Alarms and faults are events like any other: outbox, residency policy, the cloud.
    emit: (...event) => cloud.writeEvent(hwCloudEvent(...event), 'hardware'),
    panelInfo: () => ({ site: config.site.id, ip: webrtcInterfaces(config)[0] ?? null, activeCalls: calls.active }),
    // The watchdog is fed only while these pass (the event loop is checked by hw itself).
    checks: {
      sip: () => sip.selfCheck(),
      db: async () => {
        await db.get('SELECT 1');
      },
    },
  });
  hw.registerMetrics(w.metrics.registry);
  hw.on('health', (msg) => cloud.sync.publishLive('health', msg, { qos: 0 }));
  // Late in the stop: the watchdog is disarmed (magic close) and serial ports released.
  w.closer.defer('hardware', () => hw.close());
  return hw;
}
