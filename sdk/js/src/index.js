/**
 * Write Portico action backends in JavaScript or TypeScript.
 *
 * A backend is an ES module whose `run` export is made by `action()`:
 *
 *   import { action, log } from '@portico/sdk';
 *   export const run = action(async (request) => {
 *     log.info(`hello, ${request.inputs.name}`);
 *     return { summary: `greeted ${request.inputs.name}` };
 *   });
 *
 * and built into a WebAssembly component with `portico-js-build` (esbuild, then componentize-js).
 */
import { emit } from 'portico:action/log@0.2.0';
import { Failure, InvalidInput, Failed, Denied } from './failure.js';
import { fromWit as entityFromWit } from './entity.js';

export { Failure, InvalidInput, Failed, Denied };
export * as log from './log.js';
export * as progress from './progress.js';
export * as catalog from './catalog.js';
export * as http from './http.js';
export * as fs from './fs.js';
export * as env from './env.js';

/** The plugin contract this SDK builds for (the WIT package the component imports). */
export const CONTRACT = 'portico:action@0.2.0';

/** The run request with JSON already parsed; throws `InvalidInput` if the inputs are not JSON. */
function requestFromWit(r) {
  let inputs;
  try {
    inputs = JSON.parse(r.inputs);
  } catch (e) {
    throw new InvalidInput(`inputs are not valid JSON: ${e.message}`);
  }
  let config = null;
  try {
    config = JSON.parse(r.config);
  } catch {
    // As the Rust SDK: an unreadable config is `null`.
  }
  return {
    runId: r.runId,
    action: r.action,
    operation: r.operation,
    inputs,
    entity: r.entity ? entityFromWit(r.entity) : null,
    triggeredBy: {
      identifier: r.triggeredBy.identifier,
      email: r.triggeredBy.email ?? null,
      roles: [...r.triggeredBy.roles],
      teams: [...r.triggeredBy.teams],
    },
    config,
  };
}

/** The handler's return value (an outcome object, a summary string, or nothing) as the WIT record. */
function outcomeToWit(outcome) {
  if (outcome == null) return { links: [] };
  if (typeof outcome === 'string') return { summary: outcome, links: [] };
  return {
    summary: outcome.summary == null ? undefined : String(outcome.summary),
    links: (outcome.links ?? []).map((l) => ({ title: String(l.title), url: String(l.url) })),
    output: outcome.output === undefined ? undefined : JSON.stringify(outcome.output),
  };
}

/**
 * Turns anything thrown into a `Failure`: failures stay as they are; anything else (a bug in the
 * plugin) is logged with its stack at error level and fails the run as `failed` with
 * `<Type>: <message>`, instead of trapping the component.
 */
function toFailure(e) {
  if (e instanceof Failure) return e;
  if (e instanceof Error) {
    const text = `${e.name}: ${e.message}`;
    // The frames below the plugin's are the engine's export glue: not worth showing.
    const frames = String(e.stack ?? '').split('\n').filter((f) => f && !f.includes('initializer.js'));
    const stack = frames.length ? `\n${frames.join('\n')}` : '';
    emit('error', `uncaught ${text}${stack}`);
    return new Failed(text);
  }
  const text = `uncaught exception: ${typeof e === 'string' ? e : JSON.stringify(e) ?? String(e)}`;
  emit('error', text);
  return new Failed(text);
}

/**
 * Makes the component's `run` export from a handler: `export const run = action(handler)`.
 *
 * The handler gets the request with `inputs`, `config` and entities parsed, may be async, and
 * returns an outcome `{summary?, links?, output?}` (output: any JSON value), a summary string,
 * or nothing. To fail, throw `InvalidInput`, `Failed` or `Denied`; a catalog or HTTP refusal
 * thrown by the SDK fails the run as `denied`; any other exception fails it as `failed`.
 * @param {(request: object) => unknown} handler
 * @returns {(request: object) => Promise<object>} the `run` export
 */
export function action(handler) {
  return async function run(witRequest) {
    try {
      const request = requestFromWit(witRequest);
      return outcomeToWit(await handler(request));
    } catch (e) {
      throw toFailure(e);
    }
  };
}
