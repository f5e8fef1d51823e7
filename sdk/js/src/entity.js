/**
 * Entities as the SDK shows them: like the WIT record, but `properties` and `relations` are
 * objects (the WIT carries them as JSON text) and `title` is `null` when absent.
 */

function parseObject(text) {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

/** From the WIT record. */
export function fromWit(e) {
  return {
    identifier: e.identifier,
    blueprint: e.blueprint,
    title: e.title ?? null,
    team: [...(e.team ?? [])],
    properties: parseObject(e.properties),
    relations: parseObject(e.relations),
  };
}

/** To the WIT record; `team`, `properties` and `relations` may be left out. */
export function toWit(e) {
  if (!e || typeof e.blueprint !== 'string' || typeof e.identifier !== 'string') {
    throw new TypeError('an entity needs a string `blueprint` and `identifier`');
  }
  return {
    identifier: e.identifier,
    blueprint: e.blueprint,
    title: e.title == null ? undefined : String(e.title),
    team: Array.isArray(e.team) ? e.team.map(String) : e.team ? [String(e.team)] : [],
    properties: JSON.stringify(e.properties ?? {}),
    relations: JSON.stringify(e.relations ?? {}),
  };
}
