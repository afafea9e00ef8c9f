/**
 * The one body of every coded error in the tree. Each folder keeps its own class (so `instanceof`
 * tells whose error it is) and its own code union (so the compiler refuses a code another folder
 * owns); users, logs and the cloud match on `code`, never on the message.
 *
 * lib/ imports nothing from the other top-level folders, so every folder may import it.
 */
export class CodedError<C extends string> extends Error {
  constructor(
    readonly code: C,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    // The subclass's own name (HwError, SyncError...): the SEA bundle is built with keepNames.
    this.name = new.target.name;
  }
}

/**
 * A type guard for one error class, optionally for one of its codes: `isHwError(e, 'HW_CLOSED')`.
 * The class is checked with instanceof, so a subclass (AcdError under CcedgeError) matches its parent.
 */
export function codedErrorGuard<E extends CodedError<string>>(cls: abstract new (...args: never[]) => E): (e: unknown, code?: E['code']) => e is E {
  return (e: unknown, code?: E['code']): e is E => e instanceof cls && (code === undefined || e.code === code);
}
