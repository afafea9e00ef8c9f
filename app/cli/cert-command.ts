import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../gateway/config/load';
import { CcedgeError } from '../../gateway/errors';
import { importedDir, importedFiles, SiteCertificates, storeOptions, type CertificateFiles } from '../../gateway/certs/site-certs';

export const CERT_USAGE = `  cert show [--json]                  the HTTPS/SIP-TLS server certificate: subject, names, issuer, expiry, fingerprint, files
  cert import CERT KEY [CHAIN]        check and install the installer's PEM certificate, key and chain
                                      (into <dataDir>/keys/imported/; --remove goes back to the generated one)
  cert renew                          re-issue the generated server certificate from the site CA now`;

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const DAY_MS = 86_400_000;

type Config = ReturnType<typeof loadConfig>['config'];

interface CertReport {
  source: 'config' | 'imported' | 'generated';
  subject: string;
  names: string[];
  issuer: string;
  validFrom: string;
  validTo: string;
  daysLeft: number;
  fingerprint256: string;
  files: { cert: string; key: string; chain: string | null; ca: string | null };
  caFingerprint256: string | null;
  /** Names and addresses of this box that the certificate does not cover (browsers will warn there). */
  missing: string[];
}

/** `ccedge cert show|import|renew`: the one certificate store (gateway/certs/site-certs.ts), from the shell. */
export async function certCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, config: { type: 'string' }, remove: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const [sub, ...files] = positionals;
  if (sub !== 'show' && sub !== 'import' && sub !== 'renew') throw new CcedgeError('CLI_USAGE', `usage:\n${CERT_USAGE}`);
  const { config } = loadConfig({ file: values.config });
  if (sub === 'show') {
    if (files.length > 0) throw new CcedgeError('CLI_USAGE', 'usage: ccedge cert show [--json]');
    const report = certReport(config);
    if (!report) {
      process.stdout.write(`no server certificate yet: the daemon makes one at its first start (or run ccedge cert renew); data dir ${config.dataDir}\n`);
      return 1;
    }
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  }
  if (sub === 'renew') {
    if (files.length > 0) throw new CcedgeError('CLI_USAGE', 'usage: ccedge cert renew');
    await SiteCertificates.renew(storeOptions(config));
    const report = certReport(config) as CertReport;
    process.stdout.write(`server certificate re-issued from the site CA, valid to ${report.validTo}\n${formatReport(report)}A running daemon uses it within certificates.reloadCheckS (${config.certificates.reloadCheckS} s); browsers that trust the site CA need nothing more.\n`);
    return 0;
  }
  if (config.certificates.certFile) {
    throw new CcedgeError('CLI_USAGE', `the config names certificates.certFile (${config.certificates.certFile}): replace those files instead (they are reloaded within ${config.certificates.reloadCheckS} s)`);
  }
  if (values.remove) {
    if (files.length > 0) throw new CcedgeError('CLI_USAGE', 'usage: ccedge cert import --remove');
    rmSync(importedDir(config.dataDir), { recursive: true, force: true });
    process.stdout.write('imported certificate removed: the generated one (site CA) is used from the next start\n');
    return 0;
  }
  if (files.length < 2 || files.length > 3) throw new CcedgeError('CLI_USAGE', 'usage: ccedge cert import CERT KEY [CHAIN]');
  const [certFile, keyFile, chainFile] = files;
  const checked = checkInstallerFiles(certFile, keyFile, chainFile);
  const wasImported = importedFiles(config.dataDir) !== undefined;
  const dir = importedDir(config.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Key and chain first, certificate last: the store takes the pair as present once server.crt is.
  writeAtomic(path.join(dir, 'server.key'), checked.key, 0o600);
  if (checked.chain) writeAtomic(path.join(dir, 'chain.crt'), checked.chain, 0o644);
  else rmSync(path.join(dir, 'chain.crt'), { force: true });
  writeAtomic(path.join(dir, 'server.crt'), checked.cert, 0o644);
  const report = certReport(config) as CertReport;
  process.stdout.write(
    `${formatReport(report)}installed in ${dir}. ${
      wasImported
        ? `A running daemon uses it within certificates.reloadCheckS (${config.certificates.reloadCheckS} s).`
        : 'Restart the daemon to use it instead of the generated certificate (systemctl restart ccedge).'
    }\n`,
  );
  for (const w of checked.warnings) process.stderr.write(`ccedge: warning: ${w}\n`);
  return 0;
}

/** Validates the installer's PEM files: a leaf with a matching key, valid now, for servers, chained. */
export function checkInstallerFiles(certFile: string, keyFile: string, chainFile?: string, now = Date.now()): { cert: string; key: string; chain?: string; warnings: string[] } {
  const read = (f: string, what: string): string => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new CcedgeError('TLS_CERT_INVALID', `cannot read the ${what} ${f}: ${(e as Error).message}`);
    }
  };
  const cert = read(certFile, 'certificate');
  const key = read(keyFile, 'key');
  const chain = chainFile ? read(chainFile, 'chain') : undefined;
  const warnings: string[] = [];
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (e) {
    throw new CcedgeError('TLS_CERT_INVALID', `${certFile} is not a PEM certificate: ${(e as Error).message}`);
  }
  if (leaf.ca) throw new CcedgeError('TLS_CERT_INVALID', `${certFile} is a CA certificate, not a server certificate`);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new CcedgeError('TLS_CERT_INVALID', `${keyFile} is not an unencrypted PEM private key: ${(e as Error).message}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) throw new CcedgeError('TLS_CERT_INVALID', `${keyFile} is not the key of ${certFile}`);
  if (Date.parse(leaf.validTo) <= now) throw new CcedgeError('TLS_CERT_INVALID', `${certFile} expired on ${leaf.validTo}`);
  if (Date.parse(leaf.validFrom) > now) warnings.push(`${certFile} is valid only from ${leaf.validFrom}`);
  const eku = leaf.keyUsage;
  if (eku && eku.length > 0 && !eku.includes(SERVER_AUTH)) throw new CcedgeError('TLS_CERT_INVALID', `${certFile} is not for TLS servers (no serverAuth extended key usage)`);
  if (!leaf.subjectAltName) throw new CcedgeError('TLS_CERT_INVALID', `${certFile} has no subject alternative names: browsers accept no certificate without them`);
  if (chain !== undefined) {
    const blocks = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new CcedgeError('TLS_CERT_INVALID', `${chainFile as string} holds no PEM certificate`);
    const parsed = blocks.map((b, i) => {
      try {
        return new X509Certificate(b);
      } catch (e) {
        throw new CcedgeError('TLS_CERT_INVALID', `${chainFile as string}: certificate ${i + 1} is not valid: ${(e as Error).message}`);
      }
    });
    if (!leaf.checkIssued(parsed[0]) || !leaf.verify(parsed[0].publicKey)) throw new CcedgeError('TLS_CERT_INVALID', `${certFile} is not signed by the first certificate of ${chainFile as string}`);
  }
  return { cert: cert.trimEnd() + '\n', key: key.trimEnd() + '\n', chain: chain ? chain.trimEnd() + '\n' : undefined, warnings };
}

/** What `cert show` prints; undefined when no certificate exists yet. */
export function certReport(config: Config): CertReport | undefined {
  const keys = path.join(config.dataDir, 'keys');
  let source: CertReport['source'];
  let files: CertificateFiles;
  let ca: string | null = null;
  const imported = importedFiles(config.dataDir);
  if (config.certificates.certFile && config.certificates.keyFile) {
    source = 'config';
    files = { cert: config.certificates.certFile, key: config.certificates.keyFile, chain: config.certificates.chainFile };
  } else if (imported) {
    source = 'imported';
    files = imported;
  } else {
    source = 'generated';
    files = { cert: path.join(keys, 'server.crt'), key: path.join(keys, 'server.key') };
    ca = path.join(keys, 'site-ca.crt');
  }
  if (!existsSync(files.cert)) return undefined;
  const cert = new X509Certificate(readFileSync(files.cert));
  const names = (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .map((s) => s.replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean);
  const have = new Set(names.map((n) => n.toLowerCase()));
  const missing = storeOptions(config).names.filter((n) => !have.has(n.toLowerCase()));
  return {
    source,
    subject: cert.subject.replace(/\n/g, ', '),
    names,
    issuer: cert.issuer.replace(/\n/g, ', '),
    validFrom: new Date(cert.validFrom).toISOString(),
    validTo: new Date(cert.validTo).toISOString(),
    daysLeft: Math.floor((Date.parse(cert.validTo) - Date.now()) / DAY_MS),
    fingerprint256: cert.fingerprint256,
    files: { cert: files.cert, key: files.key, chain: files.chain ?? null, ca: ca && existsSync(ca) ? ca : null },
    caFingerprint256: ca && existsSync(ca) ? new X509Certificate(readFileSync(ca)).fingerprint256 : null,
    missing,
  };
}

function formatReport(r: CertReport): string {
  const lines = [
    `source:      ${r.source === 'generated' ? 'generated (site CA of this box)' : r.source === 'imported' ? 'imported (ccedge cert import)' : 'config (certificates.certFile)'}`,
    `subject:     ${r.subject}`,
    `names:       ${r.names.join(', ')}`,
    `issuer:      ${r.issuer}`,
    `valid:       ${r.validFrom} to ${r.validTo} (${r.daysLeft} days left)`,
    `SHA-256:     ${r.fingerprint256}`,
    `certificate: ${r.files.cert}`,
    `key:         ${r.files.key}`,
    ...(r.files.chain ? [`chain:       ${r.files.chain}`] : []),
    ...(r.files.ca ? [`site CA:     ${r.files.ca} (SHA-256 ${r.caFingerprint256 ?? ''}; browsers download it at /ca.crt)`] : []),
    ...(r.missing.length ? [`not covered: ${r.missing.join(', ')} (browsers warn at these; ${r.source === 'generated' ? 'a restart or ccedge cert renew adds them' : 'ask for a certificate that names them'})`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}
