/**
 * Log lines of the run, shown live to whoever watches it. `console.log` works too (stdout
 * becomes `info` lines, stderr such as `console.error` becomes `warn`); these add the level.
 */
import { emit } from 'portico:action/log@0.2.0';

/** Formats arguments as `console.log` would, roughly: strings as they are, errors with their stack. */
export function format(args) {
  return args
    .map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return a.stack ? `${a.name}: ${a.message}\n${a.stack}` : String(a);
      if (a === undefined || typeof a === 'function' || typeof a === 'symbol') return String(a);
      try {
        return JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
      } catch {
        return String(a);
      }
    })
    .join(' ');
}

/** Very detailed tracing. */
export const trace = (...args) => emit('trace', format(args));
/** Diagnostics for the plugin author. */
export const debug = (...args) => emit('debug', format(args));
/** Normal progress messages. */
export const info = (...args) => emit('info', format(args));
/** Something unexpected that did not stop the run. */
export const warn = (...args) => emit('warn', format(args));
/** Something failed. */
export const error = (...args) => emit('error', format(args));
