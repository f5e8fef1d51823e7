/** Progress of the run, shown on the run page. */
import * as wit from 'portico:action/progress@0.2.0';
import { Denied } from './failure.js';

/**
 * Reports how far the run is (0-100, clamped and rounded) and what it is doing. Leave either out
 * (`undefined` or `null`) to keep the previous value.
 * @param {number} [percent]
 * @param {string} [label]
 */
export function report(percent, label) {
  const p = percent == null ? undefined : Math.max(0, Math.min(100, Math.round(Number(percent) || 0)));
  wit.report(p, label == null ? undefined : String(label));
}

/** Adds a link to the run page now (a pull request, a pipeline), before the run ends. */
export function addLink(title, url) {
  wit.addLink({ title: String(title), url: String(url) });
}

/**
 * Hands the run to an external system (a CI pipeline): once `run` returns, the run stays in
 * progress until that system reports a final status with the token, or the grant's deadline
 * passes. Needs the action's `capabilities.handOff` grant; without it, throws `Denied`.
 * @returns {{url: string, token: string}} where to PATCH the run's status, and a bearer token
 *   for this run only (send it to the external system, never log it).
 */
export function handOff() {
  try {
    const { url, token } = wit.handOff();
    return { url, token };
  } catch (e) {
    // The WIT `err` (a string) arrives as the thrown error's `payload`.
    if (e !== null && typeof e === 'object' && 'payload' in e) throw new Denied(String(e.payload));
    throw e;
  }
}
