/**
 * A character display's command set, as pure byte encoders: the FrontPanel owns the serial port.
 * Add a driver (SparkFun SerLCD, HD44780 via an I2C bridge, ...) by implementing this.
 */
export interface CharacterDisplay {
  readonly cols: number;
  readonly rows: number;
  /** Bytes that put the display in a known state and clear it (sent after every (re)open). */
  init(): Buffer;
  /** Bytes that write `text` (already `cols` printable characters) at the start of row (0-based). */
  writeRow(row: number, text: string): Buffer;
}

/** Printable ASCII only (a character LCD's ROM has no UTF-8); cut or padded to width. */
export function fitText(text: string, cols: number): string {
  // eslint-disable-next-line no-control-regex
  const ascii = text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/[^\x20-\x7e]/g, '?');
  return ascii.length >= cols ? ascii.slice(0, cols) : ascii + ' '.repeat(cols - ascii.length);
}
