import type { CharacterDisplay } from './display';

/**
 * The Matrix Orbital command set (prefix 0xFE), which the Adafruit USB/TTL serial LCD backpack and
 * many clones also speak:
 *   FE 52     auto scroll off          FE 44     auto line wrap off
 *   FE 4B     underline cursor off     FE 54     blinking block cursor off
 *   FE 42 00  backlight on, no timeout FE 58     clear screen
 *   FE 47 c r set cursor (column, row; 1-based)
 * Key presses on a keypad come back as one ASCII byte each ('A'..'Y').
 */
export class MatrixOrbitalDisplay implements CharacterDisplay {
  constructor(
    readonly cols: number,
    readonly rows: number,
  ) {}

  init(): Buffer {
    return Buffer.from([0xfe, 0x52, 0xfe, 0x44, 0xfe, 0x4b, 0xfe, 0x54, 0xfe, 0x42, 0x00, 0xfe, 0x58]);
  }

  writeRow(row: number, text: string): Buffer {
    return Buffer.concat([Buffer.from([0xfe, 0x47, 1, row + 1]), Buffer.from(text, 'latin1')]);
  }
}
