import { Gauge, type Registry } from 'prom-client';
import type { CloudEvent } from '../../sync/events';
import type { Log } from '../../lib/log';

const DAY_MS = 86_400_000;

/** What the check needs of the store (SiteCertificates). */
export interface CertificateInfo {
  describe(): { subject: string; validTo: string; fingerprint256: string };
  readonly generated: boolean;
}

export interface ExpiryCheckOptions {
  certs: CertificateInfo;
  /** Alarm when fewer days than this are left (certificates.expiryAlarmDays). */
  alarmDays: number;
  /** Event sink (the outbox): `health.alarm` and `certificate.expiry`. */
  emit: (event: CloudEvent<'health.alarm' | 'certificate.expiry'>) => void;
  /** A generated certificate near expiry is re-issued from the site CA by this, then checked again. */
  renew?: () => Promise<void>;
  log: Pick<Log, 'info' | 'warn' | 'error'>;
  registry?: Registry;
  now?: () => number;
}

/**
 * The server certificate's expiry, checked at start and daily: fewer than `alarmDays` left raises a
 * health alarm (metric certificateDaysLeft) and a `certificate.expiry` cloud event, once per
 * raise; a renewed or replaced certificate clears both. A generated certificate is first renewed
 * (nobody has to act); the alarm then only stays up if that failed, or for an installer's
 * certificate, which only the installer can renew (`ccedge cert import`).
 */
export class CertificateExpiryCheck {
  private raised = false;
  private timer: NodeJS.Timeout | undefined;
  private daysLeft = Number.NaN;

  constructor(private readonly o: ExpiryCheckOptions) {
    if (o.registry) {
      const self = this;
      new Gauge({
        name: 'ccedge_certificate_expiry_days',
        help: 'Days until the HTTPS/SIP-TLS server certificate expires',
        registers: [o.registry],
        collect() {
          if (Number.isFinite(self.daysLeft)) this.set(self.daysLeft);
        },
      });
    }
  }

  /** Checks now and then every `intervalMs` (default daily; unref'd). */
  start(intervalMs = DAY_MS): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check; resolves when events (and a renewal, if any) are done. Never throws. */
  async check(): Promise<void> {
    try {
      let info = this.o.certs.describe();
      let days = this.days(info.validTo);
      if (days < this.o.alarmDays && this.o.certs.generated && this.o.renew) {
        try {
          await this.o.renew();
          info = this.o.certs.describe();
          days = this.days(info.validTo);
          this.o.log.info({ code: 'TLS_CERT_RENEWED', validTo: info.validTo }, 'server certificate near expiry re-issued from the site CA');
        } catch (err) {
          this.o.log.error({ err, code: 'TLS_CERT_RENEW_FAILED' }, 'server certificate near expiry could not be re-issued');
        }
      }
      this.daysLeft = days;
      const low = days < this.o.alarmDays;
      if (low === this.raised) return;
      this.raised = low;
      const state = low ? 'raised' : 'cleared';
      const source = this.o.certs.generated ? 'generated' : 'installer';
      this.o.log[low ? 'warn' : 'info']({ code: 'TLS_CERT_EXPIRING', state, daysLeft: days, validTo: info.validTo, subject: info.subject }, low ? `server certificate expires in ${days} days` : 'server certificate expiry alarm cleared');
      this.o.emit({ type: 'health.alarm', data: { metric: 'certificateDaysLeft', state, value: days, threshold: this.o.alarmDays, unit: 'days' } });
      this.o.emit({ type: 'certificate.expiry', data: { state, daysLeft: days, validTo: new Date(info.validTo).toISOString(), subject: info.subject, fingerprint256: info.fingerprint256, source } });
    } catch (err) {
      this.o.log.error({ err, code: 'TLS_CERT_INVALID' }, 'server certificate expiry check failed');
    }
  }

  get alarmRaised(): boolean {
    return this.raised;
  }

  private days(validTo: string): number {
    return Math.floor((Date.parse(validTo) - (this.o.now ?? Date.now)()) / DAY_MS);
  }
}
