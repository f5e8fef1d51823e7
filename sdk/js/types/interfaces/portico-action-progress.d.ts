/** @module Interface portico:action/progress@0.2.0 **/
/**
 * Reports how far the run is: `percent` from 0 to 100 (larger values count as 100) and a short
 * label such as `Creating repository`. Either may be left out to keep the previous value.
 */
export function report(percent: number | undefined, label: string | undefined): void;
/**
 * Adds a link to the run page as soon as it is known (before the run ends).
 */
export function addLink(link: Link): void;
/**
 * Hands the run to an external system (a CI pipeline): when the plugin then returns `ok`, the
 * run stays IN_PROGRESS until that system reports a final status with the token, or the
 * grant's deadline passes (the run then fails as `timeout`). Needs the action's
 * `capabilities.handOff` grant; without it, `err` says so.
 */
export function handOff(): ExternalReport;
export type Link = import('./portico-action-types.js').Link;
/**
 * Where and how an external system reports on a run handed to it.
 */
export interface ExternalReport {
  /**
   * The run's API address, e.g. `https://portico.example.com/v1/actions/runs/r_...`:
   * `PATCH` it with `{status, statusLabel, summary, link}`, `POST` lines to `<url>/logs`.
   */
  url: string,
  /**
   * A bearer token good for this run only.
   */
  token: string,
}
