import { fitText } from './display';

/** What the panel shows; the gateway's callback gives site/ip/calls, HwService adds the rest. */
export interface PanelInfo {
  site: string;
  /** The address an installer would browse to. */
  ip: string | null;
  activeCalls: number;
  /** Worst alarm raised (short text), null when all is well. */
  worstAlarm?: string | null;
  /** Trunk name → state. */
  trunks?: { name: string; state: string }[];
  /** Extra two-line pages (e.g. version), shown last. */
  extra?: [string, string][];
}

/**
 * Pages are pairs of lines; a 2-row display shows one pair per screen, a 4-row display two.
 * 1 summary: site / calls + OK|ALARM   2 alarm: worst alarm   3 network: IP   4.. trunks   then extras.
 */
export function renderScreens(info: PanelInfo, cols: number, rows: number): string[][] {
  const alarm = info.worstAlarm ?? null;
  const pairs: [string, string][] = [
    [info.site, `Calls ${info.activeCalls} ${alarm ? 'ALARM' : 'OK'}`],
    ['Worst alarm', alarm ?? 'none'],
    ['IP address', info.ip ?? 'no address'],
  ];
  const trunks = info.trunks ?? [];
  const cells = trunks.map((t) => `${t.name}:${t.state}`);
  const lines: string[] = [];
  for (const c of cells) {
    const last = lines[lines.length - 1];
    if (last !== undefined && last.length + 1 + c.length <= cols) lines[lines.length - 1] = `${last} ${c}`;
    else lines.push(c);
  }
  for (let i = 0; i < lines.length; i += 2) pairs.push([i === 0 && lines.length <= 1 ? 'Trunks' : (lines[i] ?? ''), i === 0 && lines.length <= 1 ? (lines[0] ?? '') : (lines[i + 1] ?? '')]);
  for (const e of info.extra ?? []) pairs.push(e);
  const perScreen = Math.max(1, Math.floor(rows / 2));
  const screens: string[][] = [];
  for (let i = 0; i < pairs.length; i += perScreen) {
    const screen = pairs.slice(i, i + perScreen).flat().map((l) => fitText(l, cols));
    while (screen.length < rows) screen.push(' '.repeat(cols));
    screens.push(screen);
  }
  return screens;
}
