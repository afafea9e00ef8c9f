import { CountingPort, type AudioPort } from '../../media';

/**
 * A leg's audio port as the Call joins it: counts what the joint sends to the leg from its join,
 * for the call-ended record (bridgedToCaller / bridgedToAgent). A member on a media worker is
 * counted there (its whole life, read from shared memory); this port subtracts the count at join.
 */
export class CountedPort extends CountingPort {
  private readonly remoteBase: number;

  constructor(inner: AudioPort) {
    super(inner);
    this.remoteBase = inner.remote?.jointSent ?? 0;
  }

  /** Frames sent to the leg since it joined. */
  get sent(): number {
    return this.inner.remote ? this.inner.remote.jointSent - this.remoteBase : this.counter.jointSent;
  }
}
