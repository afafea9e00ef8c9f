import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

/**
 * Proves the SIP listener answers: an OPTIONS to ourselves over UDP must be answered. Its Call-ID
 * starts with `callIdPrefix`, a secret of the SipServer, which answers it 200 without the trunk
 * allow-list, a log line or a rejection metric. Over TCP only, a connect must succeed. For the
 * watchdog: a wedged listener stops the keepalive.
 */
export async function sipSelfCheck(opts: { host: string; port: number; udp: boolean; callIdPrefix: string; timeoutMs?: number }): Promise<void> {
  const target = opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host === '::' ? '::1' : opts.host;
  const timeoutMs = opts.timeoutMs ?? 2000;
  if (!opts.udp) {
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host: target, port: opts.port, timeout: timeoutMs });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('timeout', () => {
        s.destroy();
        reject(new Error(`SIP TCP ${target}:${opts.port} did not accept within ${timeoutMs} ms`));
      });
      s.once('error', reject);
    });
    return;
  }
  const family = target.includes(':') ? 'udp6' : 'udp4';
  const sock = createSocket(family);
  const callId = `${opts.callIdPrefix}-${randomBytes(8).toString('hex')}`;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to OPTIONS from the SIP listener ${target}:${opts.port} within ${timeoutMs} ms`)), timeoutMs);
      sock.on('message', (msg) => {
        const text = msg.toString('latin1');
        if (!text.includes(callId)) return;
        clearTimeout(timer);
        if (text.startsWith('SIP/2.0 200 ')) resolve();
        else reject(new Error(`the SIP listener answered the self-check with ${text.slice(0, text.indexOf('\r'))}`));
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      sock.bind(0, () => {
        const { port } = sock.address();
        const host = family === 'udp6' ? `[${target}]` : target;
        const local = family === 'udp6' ? '[::1]' : '127.0.0.1';
        const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
        const msg = [
          `OPTIONS sip:${host}:${opts.port} SIP/2.0`,
          `Via: SIP/2.0/UDP ${local}:${port};branch=${branch};rport`,
          'Max-Forwards: 70',
          `From: <sip:watchdog@${local}>;tag=${randomBytes(4).toString('hex')}`,
          `To: <sip:${host}:${opts.port}>`,
          `Call-ID: ${callId}`,
          'CSeq: 1 OPTIONS',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n');
        sock.send(msg, opts.port, target);
      });
    });
  } finally {
    sock.close();
  }
}
