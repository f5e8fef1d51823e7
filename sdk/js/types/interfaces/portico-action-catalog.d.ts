/** @module Interface portico:action/catalog@0.2.0 **/
/**
 * Reads one entity; `none` when it does not exist.
 */
export function get(blueprint: string, identifier: string): Entity | undefined;
/**
 * Creates the entity or replaces it (properties, relations, title, team) and returns it as
 * stored.
 */
export function upsert(entity: Entity): Entity;
/**
 * Deletes one entity; `false` when it did not exist.
 */
export { _delete as delete };
function _delete(blueprint: string, identifier: string): boolean;
/**
 * Searches with a Port-style query, e.g.
 * `{"combinator":"and","rules":[{"property":"$blueprint","operator":"=","value":"service"}]}`.
 * Only entities of readable blueprints are returned.
 */
export function search(query: Json): Array<Entity>;
export type Entity = import('./portico-action-types.js').Entity;
export type Json = import('./portico-action-types.js').Json;
/**
 * Why a catalog call was refused.
 */
export type Error = ErrorNotFound | ErrorDenied | ErrorInvalid | ErrorConflict;
/**
 * No such entity (only `delete` reports it; `get` answers `none`).
 */
export interface ErrorNotFound {
  tag: 'not-found',
}
/**
 * The action's grant does not cover this blueprint.
 */
export interface ErrorDenied {
  tag: 'denied',
  val: string,
}
/**
 * The entity or query is malformed or fails the blueprint's schema; the text says where.
 */
export interface ErrorInvalid {
  tag: 'invalid',
  val: string,
}
/**
 * The write conflicts with the catalog's state (e.g. another entity relates to it).
 */
export interface ErrorConflict {
  tag: 'conflict',
  val: string,
}
