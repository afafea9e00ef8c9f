import http from 'node:http';
import type { DaemonHandle } from './harness';

/** What a finished call must not leave behind, as the daemon reports it. */
export interface Resources {
  /** Sockets/handles (Node's active handles). */
  handles: number;
  /** Every active resource incl. timers (Node's getActiveResourcesInfo). */
  resources: number;
  calls: number;
  rtpPorts: number;
  /** Supervisor monitoring legs (ccedge_monitor_sessions_active; 0 when the daemon has none). */
  monitors: number;
  byType: string;
}

/** Handles, resources, calls, RTP ports and monitoring legs, from /metrics and /healthz. */
export async function resources(d: DaemonHandle): Promise<Resources> {
  const metrics = await getFresh(`http://127.0.0.1:${d.httpPort}/metrics`);
  const handles = Number(/^ccedge_nodejs_active_handles_total (\d+)/m.exec(metrics)?.[1] ?? NaN);
  const active = Number(/^ccedge_nodejs_active_resources_total (\d+)/m.exec(metrics)?.[1] ?? NaN);
  const monitors = Number(/^ccedge_monitor_sessions_active (\d+)/m.exec(metrics)?.[1] ?? 0);
  const health = JSON.parse(await getFresh(`http://127.0.0.1:${d.httpPort}/healthz`)) as { calls: number; rtpPortsInUse: number };
  const byType = [...metrics.matchAll(/^ccedge_nodejs_active_(?:handles|resources)\{type="(\w+)"\} (\d+)/gm)].map((m) => `${m[1]}=${m[2]}`).join(' ');
  return { handles, resources: active, calls: health.calls, rtpPorts: health.rtpPortsInUse, monitors, byType };
}

/** GET on a connection of its own, closed afterwards: pooled keep-alive sockets would count as handles. */
export function getFresh(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
