/** @module Interface portico:action/log@0.2.0 **/
/**
 * Appends one line to the run's log. Lines beyond the action's `logBytes` limit are dropped
 * and the log ends with one line saying how many bytes were dropped.
 */
export function emit(level: Level, message: string): void;
/**
 * Severity of a log line.
 * # Variants
 * 
 * ## `"trace"`
 * 
 * Very detailed tracing.
 * ## `"debug"`
 * 
 * Diagnostics for the plugin author.
 * ## `"info"`
 * 
 * Normal progress messages.
 * ## `"warn"`
 * 
 * Something unexpected that did not stop the run.
 * ## `"error"`
 * 
 * Something failed.
 */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
