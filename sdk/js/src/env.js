/**
 * The process environment Portico gives a plugin: empty (no variables, no arguments), kept for
 * code that expects one. Through the `wasi:cli/environment` import, which the build adds.
 */
import { getEnvironment, getArguments } from 'wasi:cli/environment@0.2.12';

/** Environment variables, as an object. */
export function vars() {
  return Object.fromEntries(getEnvironment());
}

/** Command-line arguments. */
export function args() {
  return getArguments();
}
