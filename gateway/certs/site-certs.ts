/**
 * The site certificate store: one server certificate for every TLS listener of the box (SIP over
 * TLS now, HTTPS next), either the installer's own (PEM files named in `certificates.*`) or one
 * made here and signed by a site CA that is also made here, once, under `<dataDir>/keys/`:
 *
 *   site-ca.crt  site-ca.key (0600)  server.crt  server.key (0600)
 *
 * The PBX (or a browser) trusts site-ca.crt once; the server certificate can then be renewed (new
 * names, near expiry) without touching the peers. Generation uses @peculiar/x509 on node's
 * WebCrypto (ECDSA P-256): no subprocess, so it works the same in the single-file binary and
 * needs no openssl package on the box; it already comes with werift (DTLS) and is pure JS.
 *
 * Listeners ask getServerContext() for each new connection, so a reload (files changed on disk)
 * applies to the next handshake without a restart.
 */
import { webcrypto, type webcrypto as WebCrypto, randomBytes, X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { CcedgeError } from '../errors';
import { siteIPv4Addresses } from '../net/addresses';
import type { CertificatesConfig } from './config';
import type { Log } from '../../lib/log';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKey = WebCrypto.CryptoKey;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const CA_VALIDITY_DAYS = 20 * 365;
const DAY_MS = 86_400_000;

export interface SiteCertificatesOptions {
  dataDir: string;
  config: CertificatesConfig;
  /** Names and addresses the generated server certificate must cover (see siteNames). */
  names: readonly string[];
  /** Organisation in the CA's subject (the site id). */
  siteId: string;
  log?: Pick<Log, 'info' | 'warn'>;
}

export interface CertificateFiles {
  cert: string;
  key: string;
  chain?: string;
}

export class SiteCertificates {
  private context: SecureContext | undefined;
  private loaded: { cert: string; key: string } | undefined;
  /** Contexts that also verify client certificates, by CA bundle (trunks[].tls). */
  private readonly clientContexts = new Map<string, SecureContext>();
  private stamp = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();

  private constructor(
    readonly files: CertificateFiles,
    /** The site CA (PEM) when the server certificate is ours; undefined for an installer's one. */
    readonly caFile: string | undefined,
    /** True when the store generated the server certificate (false: the installer's files). */
    readonly generated: boolean,
    private readonly log?: SiteCertificatesOptions['log'],
  ) {}

  /** Loads the installer's files, or makes/renews the site CA and server certificate. */
  static async open(opts: SiteCertificatesOptions): Promise<SiteCertificates> {
    const c = opts.config;
    let store: SiteCertificates;
    const imported = importedFiles(opts.dataDir);
    if (c.certFile && c.keyFile) {
      store = new SiteCertificates({ cert: c.certFile, key: c.keyFile, chain: c.chainFile }, undefined, false, opts.log);
    } else if (imported) {
      // `ccedge cert import` put the installer's files here (validated); they win over generation.
      store = new SiteCertificates(imported, undefined, false, opts.log);
    } else {
      const keys = path.join(opts.dataDir, 'keys');
      await ensureGenerated(keys, opts);
      store = new SiteCertificates({ cert: path.join(keys, 'server.crt'), key: path.join(keys, 'server.key') }, path.join(keys, 'site-ca.crt'), true, opts.log);
    }
    store.load();
    return store;
  }

  /**
   * Re-issues the generated server certificate from the site CA now (`ccedge cert renew`, or the
   * daily check near expiry); a running daemon picks the new files up with reloadIfChanged().
   */
  static async renew(opts: SiteCertificatesOptions): Promise<void> {
    if (opts.config.certFile || importedFiles(opts.dataDir)) throw new CcedgeError('TLS_CERT_INVALID', "the server certificate is the installer's own (certificates.certFile or ccedge cert import): renew it where it was issued and import it again");
    await ensureGenerated(path.join(opts.dataDir, 'keys'), { ...opts, force: true });
  }

  /** The certificate (with chain) and key in PEM as last loaded: for listeners that take PEM (https setSecureContext). */
  pem(): { cert: string; key: string } {
    if (!this.loaded) throw new CcedgeError('TLS_CERT_INVALID', 'no server certificate loaded');
    return this.loaded;
  }

  /** The server certificate's SANs and expiry, for the start-up log and the admin page. */
  describe(): { subject: string; issuer: string; names: string[]; validTo: string; fingerprint256: string } {
    const cert = new X509Certificate(readFileSync(this.files.cert));
    return { subject: cert.subject, issuer: cert.issuer, names: sanList(cert), validTo: cert.validTo, fingerprint256: cert.fingerprint256 };
  }

  /**
   * The TLS context of the current certificate. With `clientCa` (PEM bundle) the context also
   * verifies client certificates against it (requestCert is the caller's socket option).
   */
  getServerContext(clientCa?: string): SecureContext {
    if (!this.context) throw new CcedgeError('TLS_CERT_INVALID', 'no server certificate loaded');
    if (clientCa === undefined) return this.context;
    let ctx = this.clientContexts.get(clientCa);
    if (!ctx) {
      const { cert, key } = this.readPem();
      ctx = createSecureContext({ cert, key, ca: clientCa, minVersion: 'TLSv1.2' });
      this.clientContexts.set(clientCa, ctx);
    }
    return ctx;
  }

  /** The site CA in PEM (what peers trust), if the store made the certificate. */
  caPem(): string | undefined {
    return this.caFile ? readFileSync(this.caFile, 'utf8') : undefined;
  }

  /** Re-reads the files if they changed since the last load; true if a new context is in use. */
  reloadIfChanged(): boolean {
    if (fileStamp(this.files) === this.stamp) return false;
    try {
      this.load();
    } catch (e) {
      // A half-written replacement: keep serving the old certificate and try again next time.
      this.log?.warn({ err: e, code: 'TLS_CERT_INVALID', cert: this.files.cert }, 'changed certificate files could not be loaded; the previous certificate stays in use');
      return false;
    }
    this.log?.info({ cert: this.describe() }, 'site certificate reloaded');
    for (const l of this.listeners) l();
    return true;
  }

  /** Checks the files every `intervalMs` (unref'd timer); `onChange` runs after a reload. */
  watch(intervalMs: number, onChange?: () => void): void {
    if (onChange) this.listeners.add(onChange);
    if (this.timer) return;
    this.timer = setInterval(() => this.reloadIfChanged(), intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private readPem(): { cert: string; key: string } {
    const cert = readFileSync(this.files.cert, 'utf8') + (this.files.chain ? `\n${readFileSync(this.files.chain, 'utf8')}` : '');
    return { cert, key: readFileSync(this.files.key, 'utf8') };
  }

  private load(): void {
    const stamp = fileStamp(this.files);
    const { cert, key } = this.readPem();
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(cert);
      if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
    } catch (e) {
      throw new CcedgeError('TLS_CERT_INVALID', `certificate ${this.files.cert} / key ${this.files.key}: ${(e as Error).message}`);
    }
    const ctx = createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    this.context = ctx;
    this.loaded = { cert, key };
    this.clientContexts.clear();
    this.stamp = stamp;
  }
}

/** Where `ccedge cert import` installs the installer's PEM files (keys/imported/). */
export function importedDir(dataDir: string): string {
  return path.join(dataDir, 'keys', 'imported');
}

/** The imported certificate files, if `ccedge cert import` installed some. */
export function importedFiles(dataDir: string): CertificateFiles | undefined {
  const dir = importedDir(dataDir);
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  const chain = path.join(dir, 'chain.crt');
  if (!existsSync(cert) || !existsSync(key)) return undefined;
  return { cert, key, chain: existsSync(chain) ? chain : undefined };
}

/**
 * What a generated server certificate names: configured names, the hostname, and the addresses
 * peers reach the box at. Loopback addresses are included only when a listener is bound to one
 * (tests, a same-host PBX): a wildcard listener is reached at the site addresses.
 */
export function siteNames(o: { hostname: string; configured: readonly string[]; siteAddresses: readonly string[]; webrtcInterfaces?: readonly string[]; listenAddresses: readonly string[] }): string[] {
  const out = new Set<string>();
  const add = (n: string | undefined): void => {
    if (!n || n === '0.0.0.0' || n === '::') return;
    out.add(n.toLowerCase());
  };
  for (const n of o.configured) add(n);
  if (/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(o.hostname)) add(o.hostname);
  for (const a of o.siteAddresses) if (!a.startsWith('127.') && a !== '::1') add(a);
  for (const a of o.webrtcInterfaces ?? []) add(a);
  for (const a of o.listenAddresses) add(a);
  return [...out];
}

async function ensureGenerated(dir: string, opts: SiteCertificatesOptions & { force?: boolean }): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCrt = path.join(dir, 'site-ca.crt');
  const caKey = path.join(dir, 'site-ca.key');
  const srvCrt = path.join(dir, 'server.crt');
  const srvKey = path.join(dir, 'server.key');
  let ca: { cert: x509.X509Certificate; key: CryptoKey };
  if (existsSync(caCrt) && existsSync(caKey)) {
    const cert = new x509.X509Certificate(readFileSync(caCrt, 'utf8'));
    const key = await webcrypto.subtle.importKey('pkcs8', pemBody(readFileSync(caKey, 'utf8')), ALG, false, ['sign']);
    ca = { cert, key };
  } else {
    ca = await makeCa(opts.siteId);
    writeSecret(caKey, await keyPem(ca.key));
    writeAtomic(caCrt, ca.cert.toString('pem') + '\n', 0o644);
    opts.log?.info({ file: caCrt, code: 'TLS_CA_CREATED' }, 'site CA created: peers (the PBX, browsers) trust this file');
  }
  const why = opts.force ? 'renewed on request' : existsSync(srvCrt) && existsSync(srvKey) ? renewalReason(srvCrt, caCrt, opts) : 'missing';
  if (why === null) return;
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const names = opts.names.length > 0 ? opts.names : ['localhost'];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${cnOf(names)}, O=${dnValue(opts.siteId)}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + opts.config.serverValidityDays * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  // Key first: a crash between the two writes leaves a certificate/key mismatch that the next
  // start detects (renewalReason) instead of a certificate for a key that was never saved.
  writeSecret(srvKey, await keyPem(keys.privateKey));
  writeAtomic(srvCrt, cert.toString('pem') + '\n', 0o644);
  opts.log?.info({ file: srvCrt, reason: why, names, code: 'TLS_CERT_CREATED' }, 'site server certificate issued');
}

/** Why the existing generated server certificate must be replaced, or null if it is fine. */
function renewalReason(srvCrt: string, caCrt: string, opts: SiteCertificatesOptions): string | null {
  try {
    const cert = new X509Certificate(readFileSync(srvCrt));
    const ca = new X509Certificate(readFileSync(caCrt));
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not signed by the site CA';
    if (!cert.checkPrivateKey(createPrivateKey(readFileSync(path.join(path.dirname(srvCrt), 'server.key'))))) return 'key mismatch';
    if (Date.parse(cert.validTo) - Date.now() < opts.config.renewBeforeDays * DAY_MS) return 'near expiry';
    const have = new Set(sanList(cert).map((n) => n.toLowerCase()));
    const missing = opts.names.filter((n) => !have.has(n.toLowerCase()));
    if (missing.length > 0) return `new names: ${missing.join(', ')}`;
    return null;
  } catch (e) {
    return `unreadable (${(e as Error).message})`;
  }
}

async function makeCa(siteId: string): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=ccedge site CA ${dnValue(siteId)}, O=${dnValue(siteId)}`,
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      // pathLen 0: the CA signs server certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, key: keys.privateKey };
}

function sanList(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .map((s) => s.replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean);
}

function cnOf(names: readonly string[]): string {
  return dnValue(names.find((n) => isIP(n) === 0) ?? names[0]);
}

/** Site ids and names are validated by their schemas; this only keeps DN syntax intact. */
function dnValue(s: string): string {
  return s.replace(/[^A-Za-z0-9 _.*-]/g, '-').slice(0, 64);
}

function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f; // a positive INTEGER
  return b.toString('hex');
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

function pemBody(pem: string): ArrayBuffer {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new CcedgeError('TLS_CERT_INVALID', 'site CA key file holds no PEM block');
  return der;
}

function writeSecret(file: string, text: string): void {
  writeAtomic(file, text, 0o600);
}

/** Written beside and renamed over: a reader (or a crash) never sees half a file. */
function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

function fileStamp(files: CertificateFiles): string {
  return [files.cert, files.key, files.chain]
    .map((f) => {
      if (!f) return '-';
      try {
        const s = statSync(f);
        return `${s.mtimeMs}:${s.size}:${s.ino}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

/**
 * The daemon's store: names from the config and the box. An installer's certificate that cannot
 * be loaded stops the start (it was asked for); a generation failure (read-only data dir) only
 * leaves the TLS listeners off, logged with TLS_CERT_UNAVAILABLE.
 */
export async function openSiteCertificates(config: StoreConfig, log: NonNullable<SiteCertificatesOptions['log']> & { error(o: object, msg: string): void }): Promise<SiteCertificates | undefined> {
  try {
    const store = await SiteCertificates.open(storeOptions(config, log));
    store.watch(config.certificates.reloadCheckS * 1000);
    log.info({ cert: store.describe(), ca: store.caFile ?? null }, 'site certificate ready');
    return store;
  } catch (e) {
    if (config.certificates.certFile) throw e;
    log.error({ err: e, code: 'TLS_CERT_UNAVAILABLE' }, 'no site certificate could be made: TLS listeners stay off');
    return undefined;
  }
}

/** What of the daemon's config the store needs (the CLI passes the same config). */
export interface StoreConfig {
  dataDir: string;
  site: { id: string };
  certificates: CertificatesConfig;
  sip: { host: string; publicAddress?: string };
  http: { host: string };
  https?: { enabled: boolean; host?: string; names: string[] };
  webrtc: { interfaces?: string[] };
}

/** The store's options from the config: every name and address agents and peers use for the box. */
export function storeOptions(config: StoreConfig, log?: SiteCertificatesOptions['log']): SiteCertificatesOptions {
  const names = siteNames({
    hostname: hostname(),
    // https.names is the name for the same thing as certificates.names: both count.
    configured: [...config.certificates.names, ...(config.https?.names ?? [])],
    siteAddresses: siteIPv4Addresses(),
    webrtcInterfaces: config.webrtc.interfaces,
    listenAddresses: [config.sip.host, config.sip.publicAddress ?? '', config.http.host, config.https?.enabled ? (config.https.host ?? '') : ''],
  });
  return { dataDir: config.dataDir, config: config.certificates, names, siteId: config.site.id, log };
}
