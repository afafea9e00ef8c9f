/**
 * E1 gateway simulator: the device side of the ccedge E1 serial status protocol
 * (hw/trunks/README.md), on a serial path (a pty from socat in tests, or a real port).
 *
 *   node dist/scripts/e1-sim/e1-sim.js --path /dev/pts/3 [--baud 9600] [--spans 1,2]
 *        [--checksum] [--heartbeat-ms 0] [--script FILE]
 *
 * Commands come from stdin (one per line) and then from --script FILE:
 *   state <span> <OK|RECOVERING|LOOPBACK|RED|YELLOW|BLUE|NOT_OPEN> [LOS,LOF,LMFA,RAI,AIS]
 *   dchan <span> up|down|na          count <span> bpv=12 crc4=3 ...   add <span> crc4=1 ...
 *   send (report all spans now)      hello       raw <text>            garbage <n>
 *   mute on|off (stop talking and answering)    sleep <ms>            quit
 * Every change is reported at once (SPAN line); `STATUS` from the host gets every span, `PING` a PONG.
 * stdout: `ready <path>` once open, `ok <command>` after each command, `rx <line>` per host line.
 */
import { readFileSync } from 'node:fs';
import readline from 'node:readline';
import { SerialPort, ReadlineParser } from 'serialport';
import { formatSpanLine } from '../../hw/trunks/serial-protocol';
import { ALARM_CAUSES, TRUNK_STATES, zeroCounters, type AlarmCause, type SpanReport, type TrunkState } from '../../hw/trunks/types';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const path = arg('path');
if (!path) {
  console.error('usage: e1-sim --path DEVICE [--baud 9600] [--spans 1] [--checksum] [--heartbeat-ms 0] [--script FILE]');
  process.exit(64);
}
const baud = Number(arg('baud') ?? 9600);
const withChecksum = process.argv.includes('--checksum');
const heartbeatMs = Number(arg('heartbeat-ms') ?? 0);
const spans = new Map<number, SpanReport>();
for (const s of (arg('spans') ?? '1').split(',').map(Number)) {
  spans.set(s, { span: s, state: 'OK', causes: [], dchannel: 'up', counters: zeroCounters(), framing: 'HDB3/CCS/CRC4' });
}
let muted = false;

const port = new SerialPort({ path, baudRate: baud, autoOpen: false });
port.on('error', (err) => console.log(`error ${err.message}`));
port.on('close', () => {
  console.log('closed');
  process.exit(2);
});

function send(line: string): void {
  if (!muted) port.write(`${line}\r\n`);
}

function report(span?: number): void {
  for (const r of spans.values()) if (span === undefined || r.span === span) send(formatSpanLine(r, { checksum: withChecksum }));
}

function spanOf(word: string | undefined): SpanReport {
  const r = spans.get(Number(word));
  if (!r) throw new Error(`no span ${word}`);
  return r;
}

function setCounters(r: SpanReport, words: string[], add: boolean): void {
  for (const w of words) {
    const [k, v] = w.split('=');
    const key = (k === 'slip' ? 'slips' : k) as keyof SpanReport['counters'];
    if (!(key in r.counters) || !/^\d+$/.test(v ?? '')) throw new Error(`bad counter ${w}`);
    r.counters[key] = (add ? r.counters[key] : 0) + Number(v);
  }
}

async function command(line: string): Promise<void> {
  const [cmd, ...rest] = line.trim().split(/\s+/);
  if (!cmd || cmd.startsWith('#')) return;
  switch (cmd) {
    case 'state': {
      const r = spanOf(rest[0]);
      const st = rest[1] as TrunkState;
      if (!(TRUNK_STATES as readonly string[]).includes(st)) throw new Error(`bad state ${st}`);
      const causes = (rest[2] ?? '').split(',').filter(Boolean) as AlarmCause[];
      for (const c of causes) if (!(ALARM_CAUSES as readonly string[]).includes(c)) throw new Error(`bad cause ${c}`);
      r.state = st;
      r.causes = causes;
      report(r.span);
      break;
    }
    case 'dchan': {
      const r = spanOf(rest[0]);
      r.dchannel = rest[1] === 'up' ? 'up' : rest[1] === 'down' ? 'down' : null;
      report(r.span);
      break;
    }
    case 'count':
    case 'add': {
      const r = spanOf(rest[0]);
      setCounters(r, rest.slice(1), cmd === 'add');
      report(r.span);
      break;
    }
    case 'send':
      report();
      break;
    case 'hello':
      send(`HELLO MODEL=e1-sim FW=1.0 SPANS=${spans.size}`);
      break;
    case 'raw':
      if (!muted) port.write(`${line.trim().slice(4)}\r\n`);
      break;
    case 'garbage':
      for (let i = 0; i < Number(rest[0] ?? 1); i++) if (!muted) port.write(Buffer.concat([Buffer.from([0xff, 0x00, 0x9c, 0x41 + i]), Buffer.from('\x07~~\r\n', 'latin1')]));
      break;
    case 'mute':
      muted = rest[0] !== 'off';
      break;
    case 'sleep':
      await new Promise((r) => setTimeout(r, Number(rest[0] ?? 0)));
      break;
    case 'quit':
      port.close();
      process.exit(0);
    // eslint-disable-next-line no-fallthrough
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

let queue: Promise<void> = Promise.resolve();
function enqueue(line: string): void {
  queue = queue.then(() => command(line)).then(
    () => console.log(`ok ${line.trim()}`),
    (err: unknown) => console.log(`error ${err instanceof Error ? err.message : String(err)}`),
  );
}

port.open((err) => {
  if (err) {
    console.error(`cannot open ${path}: ${err.message}`);
    process.exit(1);
  }
  port.pipe(new ReadlineParser({ delimiter: '\n' })).on('data', (raw: string) => {
    const line = raw.replace(/\r$/, '').trim();
    console.log(`rx ${line}`);
    if (muted) return;
    if (line === 'STATUS') report();
    else if (/^STATUS \d+$/.test(line)) report(Number(line.split(' ')[1]));
    else if (line === 'PING') send('PONG');
    else send('ERR unknown command');
  });
  console.log(`ready ${path}`);
  if (heartbeatMs > 0) setInterval(() => report(), heartbeatMs);
  readline.createInterface({ input: process.stdin }).on('line', enqueue).on('close', () => undefined);
  const script = arg('script');
  if (script) for (const l of readFileSync(script, 'utf8').split('\n')) enqueue(l);
});
