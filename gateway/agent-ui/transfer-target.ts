/**
 * What an agent types in **Transfer to**. Free of imports: the server's zod schema and the browser
 * page (which checks before sending) share it, so both say the same thing about a bad target.
 */

/** An extension or an outside number, dialled through the call's trunk. */
export const TRANSFER_NUMBER_PATTERN = /^[0-9*#+]{1,32}$/;
/** Queue and agent names as the config allows them (acd/config.ts). */
const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Longest text accepted as a target (`agent:` + a 64-character name, with room to spare). */
export const TRANSFER_TARGET_MAX = 80;

export const TRANSFER_TARGET_HELP = 'an extension or number (digits, * # +, up to 32), queue:<name> or agent:<name>';

export type TransferTarget = { kind: 'number'; number: string } | { kind: 'queue'; queue: string } | { kind: 'agent'; agent: string };

/** The target `text` names, or null when it is none of the three forms (no trimming: the page trims). */
export function parseTransferTarget(text: string): TransferTarget | null {
  if (text.length > TRANSFER_TARGET_MAX) return null;
  if (TRANSFER_NUMBER_PATTERN.test(text)) return { kind: 'number', number: text };
  const colon = text.indexOf(':');
  if (colon < 0) return null;
  const prefix = text.slice(0, colon);
  const name = text.slice(colon + 1);
  if (!NAME_PATTERN.test(name)) return null;
  if (prefix === 'queue') return { kind: 'queue', queue: name };
  if (prefix === 'agent') return { kind: 'agent', agent: name };
  return null;
}
