/** The JSON-lines logger hw/ writes to: the tree's one Log (lib/log.ts); hw/ never imports gateway/. */
import type { Log } from '../lib/log';

export type HwLog = Log;
export { SILENT_LOG } from '../lib/log';
