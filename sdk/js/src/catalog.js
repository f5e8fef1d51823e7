/**
 * The software catalog, limited to the blueprints the action grants
 * (`capabilities.catalog.read` / `write`). Refusals are thrown: `catalog.Denied` (a `Denied`
 * failure, so an uncaught one fails the run as `denied`), `NotFound`, `Invalid` and `Conflict`
 * (`Failed` failures). Each has `kind`: `not-found`, `denied`, `invalid` or `conflict`.
 */
import * as wit from 'portico:action/catalog@0.2.0';
import { Denied as DeniedFailure, Failed } from './failure.js';
import { fromWit, toWit } from './entity.js';

/** No such entity (only `delete` reports it; `get` returns `null`). */
export class NotFound extends Failed {
  constructor() {
    super('entity not found');
    this.kind = 'not-found';
  }
}

/** The action's grant does not cover this blueprint; the message names the grant to change. */
export class Denied extends DeniedFailure {
  constructor(message) {
    super(message);
  }
}

/** The entity or query is malformed or fails the blueprint's schema; the message says where. */
export class Invalid extends Failed {
  constructor(message) {
    super(`invalid catalog request: ${message}`);
    this.kind = 'invalid';
  }
}

/** The write conflicts with the catalog's state (e.g. another entity relates to it). */
export class Conflict extends Failed {
  constructor(message) {
    super(`catalog conflict: ${message}`);
    this.kind = 'conflict';
  }
}

/** Calls a WIT catalog function, turning its `err` (thrown with `payload`) into our classes. */
function call(fn) {
  try {
    return fn();
  } catch (e) {
    const p = e !== null && typeof e === 'object' ? e.payload : undefined;
    switch (p?.tag) {
      case 'not-found':
        throw new NotFound();
      case 'denied':
        throw new Denied(p.val);
      case 'invalid':
        throw new Invalid(p.val);
      case 'conflict':
        throw new Conflict(p.val);
      default:
        throw e;
    }
  }
}

/**
 * One entity, or `null` when it does not exist.
 * @param {string} blueprint
 * @param {string} identifier
 */
export function get(blueprint, identifier) {
  const found = call(() => wit.get(String(blueprint), String(identifier)));
  return found ? fromWit(found) : null;
}

/**
 * Creates or replaces an entity (`{blueprint, identifier, title?, team?, properties?,
 * relations?}`); returns it as stored.
 */
export function upsert(entity) {
  const record = toWit(entity);
  return fromWit(call(() => wit.upsert(record)));
}

/** Deletes an entity; `false` when it did not exist. */
function del(blueprint, identifier) {
  return call(() => wit.delete(String(blueprint), String(identifier)));
}
export { del as delete };

/**
 * Searches with a Port-style query (an object or its JSON text), within the readable
 * blueprints, e.g. `{combinator: 'and', rules: [{property: '$blueprint', operator: '=', value:
 * 'service'}]}`.
 */
export function search(query) {
  const text = typeof query === 'string' ? query : JSON.stringify(query);
  return call(() => wit.search(text)).map(fromWit);
}
