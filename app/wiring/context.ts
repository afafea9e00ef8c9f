import type { Config } from '../../gateway/config/schema';
import type { Logger } from '../../gateway/logging';
import type { Metrics } from '../../gateway/metrics';
import type { Db } from '../../gateway/store/db';
import type { Closer } from '../lifecycle';

/** What most wiring steps get: the validated config, the database, the logger, metrics and the Closer they register their closes with. */
export interface WiringContext {
  config: Config;
  db: Db;
  log: Logger;
  metrics: Metrics;
  closer: Closer;
}
