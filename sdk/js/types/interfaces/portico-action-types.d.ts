/** @module Interface portico:action/types@0.2.0 **/
/**
 * JSON text, UTF-8. Used wherever the shape belongs to the action or blueprint (inputs,
 * config, entity properties) rather than to the contract.
 */
export type Json = string;
/**
 * A catalog entity, as Portico's API shows it.
 */
export interface Entity {
  /**
   * Unique within its blueprint, e.g. `payments-api`.
   */
  identifier: string,
  /**
   * The blueprint (entity type) it belongs to, e.g. `service`.
   */
  blueprint: string,
  /**
   * Human-friendly name; the identifier is shown when absent.
   */
  title?: string,
  /**
   * Owning teams.
   */
  team: Array<string>,
  /**
   * A JSON object validated against the blueprint's schema.
   */
  properties: Json,
  /**
   * A JSON object: relation name to an identifier or a list of identifiers.
   */
  relations: Json,
}
/**
 * The user who triggered the run.
 */
export interface User {
  /**
   * The user's identifier in Portico.
   */
  identifier: string,
  /**
   * The user's e-mail address, when known.
   */
  email?: string,
  /**
   * Roles, e.g. `admin` or `member`.
   */
  roles: Array<string>,
  /**
   * Teams the user belongs to.
   */
  teams: Array<string>,
}
/**
 * What kind of action is running, as in Port's `trigger.operation`.
 * # Variants
 * 
 * ## `"create"`
 * 
 * Creates something new (scaffold a service, provision an environment).
 * ## `"day-two"`
 * 
 * Changes an existing entity (redeploy, change replicas, roll back).
 * ## `"delete"`
 * 
 * Removes an existing entity.
 */
export type Operation = 'create' | 'day-two' | 'delete';
/**
 * Everything a backend receives for one run.
 */
export interface RunRequest {
  /**
   * The run's id, e.g. `r_01J...`; unique, stable across retries.
   */
  runId: string,
  /**
   * The action's identifier.
   */
  action: string,
  /**
   * The action's operation.
   */
  operation: Operation,
  /**
   * The validated user inputs as a JSON object (secrets in clear: never log them).
   */
  inputs: Json,
  /**
   * The entity a DAY-2 or DELETE action runs on.
   */
  entity?: Entity,
  /**
   * Who triggered the run.
   */
  triggeredBy: User,
  /**
   * The static `config` JSON the operator put in the action's invocation method.
   */
  config: Json,
}
/**
 * A link shown on the run page (a pull request, a dashboard, a pipeline).
 */
export interface Link {
  /**
   * The link's text.
   */
  title: string,
  /**
   * An absolute URL.
   */
  url: string,
}
/**
 * How a successful run ended.
 */
export interface RunOutcome {
  /**
   * One line shown as the run's summary.
   */
  summary?: string,
  /**
   * Links shown on the run page, after any added with `progress.add-link`.
   */
  links: Array<Link>,
  /**
   * Any JSON the backend wants to hand back, kept with the run.
   */
  output?: Json,
}
/**
 * How a failed run ended; the text is shown to the user as is.
 */
export type RunFailure = RunFailureInvalidInput | RunFailureFailed | RunFailureDenied;
/**
 * The inputs were well-formed but unusable (a name already taken, a bad combination).
 */
export interface RunFailureInvalidInput {
  tag: 'invalid-input',
  val: string,
}
/**
 * The work failed (an upstream API answered 500, a pull request could not be opened).
 */
export interface RunFailureFailed {
  tag: 'failed',
  val: string,
}
/**
 * Something the backend needed was refused (a grant missing, a permission upstream).
 */
export interface RunFailureDenied {
  tag: 'denied',
  val: string,
}
