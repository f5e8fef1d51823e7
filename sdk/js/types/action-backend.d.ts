// world portico:action/action-backend@0.2.0
export type RunRequest = import('./interfaces/portico-action-types.js').RunRequest;
export type RunOutcome = import('./interfaces/portico-action-types.js').RunOutcome;
export type RunFailure = import('./interfaces/portico-action-types.js').RunFailure;
export type * as PorticoActionCatalog020 from './interfaces/portico-action-catalog.js'; // import portico:action/catalog@0.2.0
export type * as PorticoActionLog020 from './interfaces/portico-action-log.js'; // import portico:action/log@0.2.0
export type * as PorticoActionProgress020 from './interfaces/portico-action-progress.js'; // import portico:action/progress@0.2.0
export type * as PorticoActionTypes020 from './interfaces/portico-action-types.js'; // import portico:action/types@0.2.0
export type * as WasiClocksMonotonicClock0212 from './interfaces/wasi-clocks-monotonic-clock.js'; // import wasi:clocks/monotonic-clock@0.2.12
export type * as WasiHttpOutgoingHandler0212 from './interfaces/wasi-http-outgoing-handler.js'; // import wasi:http/outgoing-handler@0.2.12
export type * as WasiHttpTypes0212 from './interfaces/wasi-http-types.js'; // import wasi:http/types@0.2.12
export type * as WasiIoError0212 from './interfaces/wasi-io-error.js'; // import wasi:io/error@0.2.12
export type * as WasiIoPoll0212 from './interfaces/wasi-io-poll.js'; // import wasi:io/poll@0.2.12
export type * as WasiIoStreams0212 from './interfaces/wasi-io-streams.js'; // import wasi:io/streams@0.2.12
/**
* Runs the action once. Return `ok` with an outcome, or `err` with a failure the user will see.
* A trap (panic, abort, out of memory, timeout) fails the run too, with the host's reason.
*/
export function run(request: RunRequest): RunOutcome;
export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
