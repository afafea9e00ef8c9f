/**
 * Wallboard WebSocket `/ws/wallboard`, version 1: JSON messages, one per frame. Shared by the
 * server (which validates client frames with these zod schemas) and the page (types only).
 *
 * The page sends `hello` with the admin API token first; the server answers with the current
 * KPIs (`kpis`) and then pushes `kpis` whenever they change (at most once a second, and at least
 * every heartbeat, 10 s by default). A bad token gets `error` WS_SESSION_INVALID and close 4001.
 */
import { z } from 'zod';
import type { IntentKpi, KpiSnapshot, QueueKpi } from '../kpi/kpi-types';

export const WALLBOARD_PROTOCOL_VERSION = 1;

export const wallboardClientMessage = z.discriminatedUnion('type', [
  z.object({ v: z.literal(WALLBOARD_PROTOCOL_VERSION), type: z.literal('hello'), token: z.string().min(1).max(256) }).strict(),
  z.object({ v: z.literal(WALLBOARD_PROTOCOL_VERSION), type: z.literal('ping') }).strict(),
]);
export type WallboardClientMessage = z.infer<typeof wallboardClientMessage>;

export type WallboardErrorCode = 'WS_BAD_MESSAGE' | 'WS_UNSUPPORTED_VERSION' | 'WS_NOT_AUTHENTICATED' | 'WS_SESSION_INVALID';

export type KpisMessage = { v: 1; type: 'kpis' } & KpiSnapshot;

export type WallboardServerMessage =
  | KpisMessage
  | { v: 1; type: 'error'; code: WallboardErrorCode; message: string }
  | { v: 1; type: 'pong' };

export type { IntentKpi, KpiSnapshot, QueueKpi };
