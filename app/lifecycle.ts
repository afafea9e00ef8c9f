/** The one logger method closing needs (a pino logger is one). */
interface CloseLog {
  error(obj: object, msg: string): void;
}

/**
 * What a start opened, closed in reverse order of opening: after a normal stop and after a start
 * that failed half way alike, so a failed start leaves no socket, timer, MQTT link or database open.
 * Each part is closed once; a close that throws is logged with the part's name and the rest still
 * close. `close()` is idempotent (a second call waits for the first).
 */
export class Closer {
  private readonly parts: Array<{ name: string; close: () => void | Promise<void> }> = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly log: CloseLog) {}

  /** Registers the close of a part that now exists (call it right after the part opened). */
  defer(name: string, close: () => void | Promise<void>): void {
    if (this.closing) throw new Error(`cannot register ${name}: already closing`);
    this.parts.push({ name, close });
  }

  /** The registered names, in the order they will close. */
  get order(): string[] {
    return this.parts.map((p) => p.name).reverse();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (let part = this.parts.pop(); part !== undefined; part = this.parts.pop()) {
        try {
          await part.close();
        } catch (err) {
          this.log.error({ err, part: part.name }, 'closing a part failed; closing the rest');
        }
      }
    })();
    return this.closing;
  }
}
