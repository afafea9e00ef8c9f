import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * baresip 1.0 (Debian `baresip-core`) as the PBX: a config directory per instance, a long tone
 * WAV as its microphone (aufile ends the call when the file ends), and sndfile dumping what it
 * decodes, so a test can check what it heard. Driven with `-e` commands; `-t` bounds its life.
 */
export interface BaresipOptions {
  dir: string;
  /** Local SIP address:port baresip listens on (UDP, TCP and TLS share it). */
  listen: string;
  /** Account parameters, e.g. `;mediaenc=srtp`. */
  accountParams?: string;
  /** PEM file of the CA that signs ccedge's certificate (sip_cafile). */
  caFile?: string;
  /** Frequency of the tone baresip sends (Hz). */
  toneHz: number;
  rtpPorts: string;
  maxLifeS: number;
}

export class Baresip {
  readonly output: string[] = [];

  private constructor(
    readonly proc: ChildProcess,
    readonly dumpDir: string,
  ) {
    const keep = (c: Buffer): void => {
      this.output.push(...c.toString('utf8').split('\n'));
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
  }

  /** Starts baresip and dials `uri` right away. */
  static start(o: BaresipOptions, uri: string): Baresip {
    mkdirSync(o.dir, { recursive: true });
    const dumpDir = path.join(o.dir, 'dump');
    mkdirSync(dumpDir, { recursive: true });
    const tone = path.join(o.dir, 'tone.wav');
    writeFileSync(tone, toneWav(o.toneHz, 120));
    const config = [
      'poll_method epoll',
      // Advertise the loopback address in SDP: by default baresip names the site address while
      // sending from 127.0.0.1 (FIELD-NOTES), which ccedge rightly drops as a foreign source.
      'net_interface 127.0.0.1',
      `sip_listen ${o.listen}`,
      o.caFile ? `sip_cafile ${o.caFile}` : '',
      `audio_source aufile,${tone}`,
      'audio_player aufile,/dev/null',
      'audio_alert aufile,/dev/null',
      `rtp_ports ${o.rtpPorts}`,
      'rtp_stats no',
      'module_path /usr/lib/baresip/modules',
      'module g711.so',
      'module aufile.so',
      'module sndfile.so',
      'module srtp.so',
      'module_app account.so',
      'module_app menu.so',
      `snd_path ${dumpDir}`,
      '',
    ].join('\n');
    writeFileSync(path.join(o.dir, 'config'), config);
    const [host] = o.listen.split(':');
    writeFileSync(path.join(o.dir, 'accounts'), `<sip:pbx@${host}>;regint=0;audio_codecs=PCMU${o.accountParams ?? ''}\n`);
    writeFileSync(path.join(o.dir, 'contacts'), '');
    const proc = spawn('baresip', ['-f', o.dir, '-t', String(o.maxLifeS), '-e', `/dial ${uri}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new Baresip(proc, dumpDir);
  }

  /** Hangs up every call (the menu module's /hangup), as a PBX user would. */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.kill('SIGTERM');
      setTimeout(() => this.proc.kill('SIGKILL'), 3000).unref();
    });
  }

  /** 16-bit samples of what baresip decoded from ccedge (sndfile's `-dec.wav` dump). */
  received(): Int16Array {
    if (!existsSync(this.dumpDir)) return new Int16Array(0);
    const file = readdirSync(this.dumpDir).find((f) => f.endsWith('-dec.wav'));
    if (!file) return new Int16Array(0);
    return wavSamples(readFileSync(path.join(this.dumpDir, file)));
  }
}

/** A mono 16-bit 8 kHz WAV holding a sine at `hz` (amplitude ~ -10 dBFS). */
export function toneWav(hz: number, seconds: number): Buffer {
  const n = 8000 * seconds;
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(10000 * Math.sin((2 * Math.PI * hz * i) / 8000)), 2 * i);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** The samples of a 16-bit PCM WAV (the `data` chunk, wherever it is). */
export function wavSamples(wav: Buffer): Int16Array {
  let off = 12;
  while (off + 8 <= wav.length) {
    const id = wav.toString('latin1', off, off + 4);
    const size = wav.readUInt32LE(off + 4);
    if (id === 'data') {
      const end = Math.min(wav.length, off + 8 + size);
      const out = new Int16Array(Math.floor((end - off - 8) / 2));
      for (let i = 0; i < out.length; i++) out[i] = wav.readInt16LE(off + 8 + 2 * i);
      return out;
    }
    off += 8 + size + (size & 1);
  }
  return new Int16Array(0);
}

/**
 * How much of the signal's power sits at `hz` (Goertzel over the whole buffer, normalised by
 * total power): ~1 for a clean tone, ~0 for silence, noise or another frequency.
 */
export function toneShare(samples: ArrayLike<number>, hz: number, rate = 8000): number {
  const n = samples.length;
  if (n === 0) return 0;
  const k = Math.round((n * hz) / rate);
  const coeff = 2 * Math.cos((2 * Math.PI * k) / n);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (let i = 0; i < n; i++) {
    const x = samples[i];
    energy += x * x;
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  // A pure sine of N samples gives power = (N/2)^2 * A^2/... ; energy = N * A^2 / 2: normalise.
  return energy === 0 ? 0 : (2 * power) / (n * energy);
}
