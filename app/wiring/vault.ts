import type { Config } from '../../gateway/config/schema';
import type { Logger } from '../../gateway/logging';
import type { Db } from '../../gateway/store/db';
import { Vault } from '../../vault';
import type { Closer } from '../lifecycle';

export interface VaultWiring {
  config: Config;
  db: Db;
  log: Logger;
  closer: Closer;
  /** Sends the audit log's head to the cloud (an event: a hash and a sequence number, nothing else). */
  anchor(head: { seq: number; hash: string }): Promise<void>;
}

/**
 * Opens the recording vault: finalises recordings an unclean stop left open, sweeps expired ones
 * every hour, and anchors the audit log's head off site so a tail cut off the log can be proven
 * later with `ccedge recordings verify --anchor SEQ:HASH`. Its timers close with the daemon.
 */
export async function openVault(w: VaultWiring): Promise<Vault> {
  const { config, db, log, closer } = w;
  const vault = Vault.open({ dataDir: config.dataDir, db, log: log.child({ component: 'vault' }) });
  const recovered = await vault.recoverOpen();
  if (recovered.length) log.warn({ recordings: recovered.length }, 'finalised recordings left open by an unclean stop');
  const sweeper = setInterval(() => {
    vault.sweepExpired(new Date()).catch((err: unknown) => log.error({ err }, 'recording retention sweep failed'));
  }, 3600_000);
  sweeper.unref();
  closer.defer('retention sweep', () => clearInterval(sweeper));
  let anchoredSeq = 0;
  const anchorAuditHead = (): void => {
    vault.audit
      .head()
      .then((head) => {
        if (!head || head.seq === anchoredSeq) return;
        anchoredSeq = head.seq;
        return w.anchor(head);
      })
      .catch((err: unknown) => log.error({ err }, 'audit head anchoring failed'));
  };
  anchorAuditHead();
  const anchorTimer = setInterval(anchorAuditHead, config.recording.anchorEveryS * 1000);
  anchorTimer.unref();
  closer.defer('audit anchoring', () => clearInterval(anchorTimer));
  return vault;
}
