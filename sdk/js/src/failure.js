/**
 * Failures: how a run ends when it does not succeed.
 *
 * componentize-js turns a value thrown from the exported `run` into the `err` case of
 * `result<run-outcome, run-failure>` when the thrown object has an own `payload` property
 * (its value, `{tag, val}`, is the `run-failure`); any other `Error` would trap the component.
 * So every failure below carries `payload`, and `action()` converts everything else into one.
 */

/** Base of the three failure kinds; `kind` is the WIT case, `message` the text the user sees. */
export class Failure extends Error {
  /**
   * @param {'invalid-input' | 'failed' | 'denied'} kind
   * @param {string} message
   */
  constructor(kind, message) {
    super(String(message));
    this.name = new.target.name;
    this.kind = kind;
    // Own (not inherited) property: that is what componentize-js looks for.
    Object.defineProperty(this, 'payload', {
      value: { tag: kind, val: this.message },
      enumerable: false,
    });
  }

  /** As the Rust SDK's `Failure` prints: `invalid input: M`, `M` or `denied: M`. */
  toString() {
    switch (this.kind) {
      case 'invalid-input':
        return `invalid input: ${this.message}`;
      case 'denied':
        return `denied: ${this.message}`;
      default:
        return this.message;
    }
  }
}

/** The inputs are well-formed but unusable (a name already taken, a bad combination). */
export class InvalidInput extends Failure {
  /** @param {string} message */
  constructor(message) {
    super('invalid-input', message);
  }
}

/** The work failed (an upstream API answered 500, a pull request could not be opened). */
export class Failed extends Failure {
  /** @param {string} message */
  constructor(message) {
    super('failed', message);
  }
}

/** Something the backend needed was refused (a grant missing, a permission upstream). */
export class Denied extends Failure {
  /** @param {string} message */
  constructor(message) {
    super('denied', message);
  }
}
