/**
 * A programmable plugin for the capability tests, the JavaScript port of tests/guests/probe: runs
 * the `steps` in its inputs and returns what each one gave, as `{"results": [{"ok": value} |
 * {"error": text}]}` with the text as the Rust `Failure` prints it. With `"failOnError": true`
 * the first error fails the run (a denial as `denied`).
 *
 * Steps as in the Rust probe: `{"http": {method, url, headers, body}}`, `{"get": {blueprint,
 * identifier}}`, `{"upsert": entity}`, `{"delete": {blueprint, identifier}}`, `{"search":
 * query}`, `{"writeFile": {path, content}}`, `{"readFile": path}`, `{"listDir": path}`,
 * `{"progress": {percent, label}}`, `{"link": {title, url}}`, `{"log": text}`, `{"env": null}`,
 * `{"print": text}`, `{"sleepMs": n}`, `{"handOffTo": url}`, `{"echo": value}`, `{"summary":
 * text}`, `{"fail": text}`, `{"logLines": {count, text}}`, `{"repeat": {text, times}}`; and,
 * for the JS runtime's own tests: `{"allocate": MiB}` (allocates and keeps that much memory),
 * `{"spin": null}` (loops forever), `{"raise": text}` (throws an ordinary Error, as a bug in a
 * plugin would), `{"invalid": text}` and `{"deny": text}` (fail as invalid-input / denied).
 *
 * In the steps, `{{NAME}}` stands for the string input `NAME` (e.g. a secret input).
 */
import { action, catalog, env, fs, http, log, progress, Denied, Failed, Failure, InvalidInput } from '@portico/sdk';

/** Memory the `allocate` steps keep, so that it stays allocated until the run ends. */
const kept = [];

/** The steps with `{{NAME}}` replaced by the string inputs (JSON-escaped, as the Rust probe). */
function substitute(steps, inputs) {
  let text = JSON.stringify(steps ?? null);
  for (const [name, value] of Object.entries(inputs)) {
    if (name === 'steps' || name === 'failOnError' || typeof value !== 'string') continue;
    text = text.replaceAll(`{{${name}}}`, JSON.stringify(value).slice(1, -1));
  }
  const parsed = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new InvalidInput('steps: expected a list of steps');
  return parsed.map((step) => {
    const keys = step !== null && typeof step === 'object' ? Object.keys(step) : [];
    if (keys.length !== 1 || !(keys[0] in STEPS)) {
      throw new InvalidInput(`steps: unknown step ${JSON.stringify(step)}, expected one of ${Object.keys(STEPS).join(', ')}`);
    }
    return [keys[0], step[keys[0]]];
  });
}

/** As the Rust probe: a missing or forbidden file is a denial, other file errors failures. */
function files(fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof fs.FsError && ['no-entry', 'access', 'not-permitted'].includes(e.code)) throw new Denied(e.message);
    throw e;
  }
}

/** What each step does; its return value is the step's `ok`. */
const STEPS = {
  http: ({ method = 'GET', url, headers = {}, body = '' }) => {
    const res = http.request(method, url, { headers, body });
    return { status: res.status, headers: Object.entries(res.headers), body: res.text() };
  },
  get: ({ blueprint, identifier }) => catalog.get(blueprint, identifier),
  upsert: (entity) => catalog.upsert(entity),
  delete: ({ blueprint, identifier }) => catalog.delete(blueprint, identifier),
  search: (query) => catalog.search(query),
  writeFile: ({ path, content }) => {
    files(() => fs.writeFile(path, content));
    return path;
  },
  readFile: (path) => files(() => fs.readFile(path)),
  listDir: (path) => files(() => fs.readDir(path)),
  progress: ({ percent, label }) => progress.report(percent, label) ?? null,
  link: ({ title, url }) => progress.addLink(title, url) ?? null,
  log: (text) => log.info(text) ?? null,
  print: (text) => console.log(text) ?? null,
  env: () => ({ vars: env.vars(), args: env.args() }),
  sleepMs: (ms) => new Promise((resolve) => setTimeout(() => resolve(null), ms)),
  handOffTo: (receiver) => {
    const report = progress.handOff();
    return { status: http.post(receiver, { json: report }).status };
  },
  echo: (value) => value,
  summary: () => null,
  fail: (text) => {
    throw new Failed(text);
  },
  logLines: ({ count, text = '' }) => {
    for (let i = 0; i < count; i++) log.info(text);
    return null;
  },
  repeat: ({ text, times }) => text.repeat(times),
  allocate: (mib) => {
    const block = new Uint8Array(mib * 1024 * 1024);
    for (let i = 0; i < block.length; i += 4096) block[i] = 1; // touch every page
    kept.push(block);
    return null;
  },
  spin: () => {
    for (;;) {}
  },
  raise: (text) => {
    throw new Error(text);
  },
  invalid: (text) => {
    throw new InvalidInput(text);
  },
  deny: (text) => {
    throw new Denied(text);
  },
};

export const run = action(async (request) => {
  const inputs = request.inputs ?? {};
  const steps = inputs.steps ?? request.config?.steps ?? null;
  let summary = 'probed';
  const results = [];
  for (const [name, arg] of substitute(steps, inputs)) {
    if (name === 'summary') {
      summary = arg;
      continue;
    }
    try {
      const value = await STEPS[name](arg);
      results.push({ ok: value === undefined ? null : value });
    } catch (e) {
      // Failures are the probe's subject; anything else is a bug and escapes (see `raise`).
      if (!(e instanceof Failure) || inputs.failOnError) throw e;
      results.push({ error: e.toString() });
    }
  }
  return { summary, output: { results } };
});
