/**
 * Types of `@portico/sdk`. The WIT-level types that `jco types` generates from the contract are
 * in `../types/` (`RunRequest`, `RunOutcome`, ...); these are the SDK's own, with JSON parsed.
 */

/** The plugin contract this SDK builds for. */
export const CONTRACT: 'portico:action@0.2.0';

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A catalog entity; `properties` and `relations` are objects (the WIT carries them as JSON text). */
export interface Entity<P = Record<string, Json>, R = Record<string, string | string[]>> {
  identifier: string;
  blueprint: string;
  /** `null` when absent. */
  title: string | null;
  team: string[];
  properties: P;
  relations: R;
}

/** An entity to write: `title`, `team`, `properties` and `relations` may be left out. */
export interface EntityInput<P = Record<string, Json>, R = Record<string, string | string[]>> {
  identifier: string;
  blueprint: string;
  title?: string | null;
  team?: string[];
  properties?: P;
  relations?: R;
}

/** The user who triggered the run. */
export interface User {
  identifier: string;
  email: string | null;
  roles: string[];
  teams: string[];
}

/** What kind of action is running. */
export type Operation = 'create' | 'day-two' | 'delete';

/** One run's request, with `inputs` and `config` parsed from JSON. */
export interface Request<Inputs = Record<string, any>, Config = any> {
  runId: string;
  action: string;
  operation: Operation;
  /** The validated user inputs (secrets in clear: never log them). */
  inputs: Inputs;
  /** The entity a DAY-2 or DELETE run acts on. */
  entity: Entity | null;
  triggeredBy: User;
  /** The static `config` from the action's invocation method (`null` if unreadable). */
  config: Config;
}

/** A link shown on the run page. */
export interface Link {
  title: string;
  url: string;
}

/** How a successful run ended. */
export interface Outcome {
  /** One line shown as the run's summary. */
  summary?: string;
  /** Links shown on the run page, after those added with `progress.addLink`. */
  links?: Link[];
  /** Any JSON value, kept with the run. */
  output?: unknown;
}

/** The run export that `action` makes (the world's `run`, lifted by componentize-js). */
export type Run = (request: import('../types/interfaces/portico-action-types.js').RunRequest) =>
  Promise<import('../types/interfaces/portico-action-types.js').RunOutcome>;

/**
 * Makes the component's `run` export: `export const run = action(async (request) => ...)`.
 * The handler returns an `Outcome`, a summary string or nothing, and fails by throwing
 * `InvalidInput`, `Failed` or `Denied`; any other exception is logged with its stack and fails
 * the run as `failed` with `<Type>: <message>`.
 */
export function action<Inputs = Record<string, any>, Config = any>(
  handler: (request: Request<Inputs, Config>) => Outcome | string | void | Promise<Outcome | string | void>,
): Run;

/** Why a run failed; `kind` is the WIT `run-failure` case. */
export class Failure extends Error {
  constructor(kind: 'invalid-input' | 'failed' | 'denied', message: string);
  readonly kind: 'invalid-input' | 'failed' | 'denied' | 'not-found' | 'invalid' | 'conflict';
  /** The `run-failure` value componentize-js returns as `err`. */
  readonly payload: { tag: 'invalid-input' | 'failed' | 'denied'; val: string };
  /** `invalid input: M`, `M` or `denied: M`, as the Rust SDK prints a failure. */
  toString(): string;
}
/** The inputs are well-formed but unusable. */
export class InvalidInput extends Failure {
  constructor(message: string);
}
/** The work failed. */
export class Failed extends Failure {
  constructor(message: string);
}
/** Something the backend needed was refused. */
export class Denied extends Failure {
  constructor(message: string);
}

/** `Denied`, under a name the namespaces below (which have their own `Denied`) can use. */
declare const SdkDenied: typeof Denied;

/** Log lines of the run. Arguments are joined as `console.log` would (objects as JSON). */
export namespace log {
  function trace(...args: unknown[]): void;
  function debug(...args: unknown[]): void;
  function info(...args: unknown[]): void;
  function warn(...args: unknown[]): void;
  function error(...args: unknown[]): void;
}

/** Progress shown on the run page. */
export namespace progress {
  /** 0-100 (clamped, rounded) and a label; either may be left out to keep the previous value. */
  function report(percent?: number | null, label?: string | null): void;
  /** Adds a link now, before the run ends. */
  function addLink(title: string, url: string): void;
  /** Hands the run to an external system; needs `capabilities.handOff`, else throws `Denied`. */
  function handOff(): { url: string; token: string };
}

/** The catalog, within the granted blueprints. */
export namespace catalog {
  /** No such entity (from `delete`). */
  export class NotFound extends Failed {
    constructor();
  }
  /** The grant does not cover the blueprint. */
  export class Denied extends SdkDenied {}
  /** Malformed entity or query, or it fails the blueprint's schema. */
  export class Invalid extends Failed {
    constructor(message: string);
  }
  /** Conflicts with the catalog's state. */
  export class Conflict extends Failed {
    constructor(message: string);
  }
  /** One entity, or `null`. */
  export function get<P = Record<string, Json>>(blueprint: string, identifier: string): Entity<P> | null;
  /** Creates or replaces an entity; returns it as stored. */
  export function upsert<P = Record<string, Json>>(entity: EntityInput<P>): Entity<P>;
  /** Deletes an entity; `false` when it did not exist. */
  function _delete(blueprint: string, identifier: string): boolean;
  export { _delete as delete };
  /** Searches with a Port-style query object (or its JSON text). */
  export function search(query: object | string): Entity[];
}

/** Outgoing HTTP to the granted origins; synchronous (awaiting the result is harmless). */
export namespace http {
  export interface Options {
    headers?: Record<string, string>;
    body?: string | Uint8Array;
    /** Sent as JSON with `content-type: application/json`. */
    json?: unknown;
  }
  /** A response, read in full. Any status is a response: check `ok`. */
  export class Response {
    readonly url: string;
    readonly status: number;
    /** Names lower-case; repeated headers joined by `, `. */
    readonly headers: Record<string, string>;
    readonly body: Uint8Array;
    /** Whether the status is 2xx. */
    readonly ok: boolean;
    text(): string;
    /** Throws `HttpError` if the body is not JSON. */
    json<T = any>(): T;
  }
  /** The host refused the request (origin not granted, or a private address); names the URL. */
  export class Denied extends SdkDenied {}
  /** Sending or receiving failed (a `Failed`); `code` is the wasi:http error code, if any. */
  export class HttpError extends Failed {
    readonly code?: { tag: string; val?: unknown };
  }
  export function request(method: string, url: string, options?: Options): Response;
  export function get(url: string, options?: Options): Response;
  export function post(url: string, options?: Options): Response;
  export function put(url: string, options?: Options): Response;
  export function patch(url: string, options?: Options): Response;
  function _delete(url: string, options?: Options): Response;
  export { _delete as delete };
}

/** Files under the granted folders (`filesystem: "scratch"` gives `/scratch`). */
export namespace fs {
  /** `code` is the WASI error code, e.g. `no-entry` or `access`. */
  class FsError extends Failed {
    readonly path: string;
    readonly code: string;
  }
  function writeFile(path: string, content: string | Uint8Array): void;
  function readFile(path: string): string;
  function readBytes(path: string): Uint8Array;
  function readDir(path: string): string[];
}

/** The (empty) environment a plugin gets. */
export namespace env {
  function vars(): Record<string, string>;
  function args(): string[];
}
