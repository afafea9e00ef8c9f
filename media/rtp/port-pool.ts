import { MediaError } from '../errors';

/**
 * Even RTP ports from a configured range (RTP on even ports, RFC 3550 §11; the odd neighbour is
 * left for RTCP). Allocation is round-robin: a just-released port is the last to be handed out
 * again, so late packets of a finished call do not land in the next call on the same port.
 */
export class PortPool {
  private readonly first: number;
  private readonly slots: number;
  private readonly used: Uint8Array;
  private cursor = 0;
  private count = 0;

  constructor(range: { min: number; max: number }) {
    const { min, max } = range;
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) {
      throw new Error(`invalid RTP port range ${min}-${max}: need integers 1 <= min <= max <= 65535`);
    }
    this.first = min % 2 === 0 ? min : min + 1;
    this.slots = this.first > max ? 0 : Math.floor((max - this.first) / 2) + 1;
    if (this.slots === 0) throw new Error(`invalid RTP port range ${min}-${max}: contains no even port`);
    this.used = new Uint8Array(this.slots);
  }

  /** Parses `min-max` as found in CCEDGE_RTP_PORTS; throws a plain Error naming the bad value. */
  static parseRange(text: string): { min: number; max: number } {
    const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(String(text));
    if (!m) throw new Error(`invalid RTP port range "${text}": expected "min-max", e.g. "20000-29999"`);
    const min = Number(m[1]);
    const max = Number(m[2]);
    if (min < 1 || max > 65535) throw new Error(`invalid RTP port range "${text}": ports must be 1-65535`);
    if (min > max) throw new Error(`invalid RTP port range "${text}": min is greater than max`);
    if (min === max && min % 2 === 1) throw new Error(`invalid RTP port range "${text}": contains no even port`);
    return { min, max };
  }

  acquire(): number {
    if (this.count >= this.slots) {
      throw new MediaError('RTP_PORTS_EXHAUSTED', `all ${this.slots} RTP ports are in use`);
    }
    for (let i = 0; i < this.slots; i++) {
      const slot = (this.cursor + i) % this.slots;
      if (this.used[slot] === 0) {
        this.used[slot] = 1;
        this.count++;
        this.cursor = (slot + 1) % this.slots;
        return this.first + slot * 2;
      }
    }
    // Unreachable while count is consistent; kept so a bookkeeping bug fails loudly, not silently.
    throw new MediaError('RTP_PORTS_EXHAUSTED', 'no free RTP port found');
  }

  /** Idempotent: releasing a free or foreign port is ignored so double-close paths stay safe. */
  release(port: number): void {
    const off = port - this.first;
    if (!Number.isInteger(port) || off < 0 || off % 2 !== 0) return;
    const slot = off / 2;
    if (slot >= this.slots || this.used[slot] === 0) return;
    this.used[slot] = 0;
    this.count--;
  }

  get inUse(): number {
    return this.count;
  }

  get capacity(): number {
    return this.slots;
  }
}
