#!/usr/bin/env node
/**
 * portico-js-build: builds a Portico plugin written in JavaScript or TypeScript into a
 * WebAssembly component.
 *
 *   portico-js-build --entry src/index.ts [-o plugin.wasm] [--wit DIR] [--world action-backend]
 *
 * Two steps, because componentize-js takes one ES module and resolves neither npm packages nor
 * TypeScript: esbuild bundles the entry and everything it imports into one ES module (keeping
 * the `portico:*` and `wasi:*` imports, which the component model provides, external; always
 * taking `@portico/sdk` from this package, so a guest needs no npm install of its own), then
 * componentize-js (the engine of `jco componentize`, same options) embeds it in StarlingMonkey
 * against the WIT world.
 *
 * The world is the action's plus the WASI imports the SDK calls itself (StarlingMonkey has no
 * file or environment API): `wasi:filesystem/preopens` and `wasi:cli/environment`. Every
 * component componentize-js makes imports wasi:filesystem and wasi:cli already (the engine
 * uses them), and a host must provide them to Rust plugins too, so this adds no requirement.
 */
import { build } from 'esbuild';
import { componentize } from '@bytecodealliance/componentize-js';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The WIT of the checkout this SDK sits in (sdk/js -> wit), as the Rust SDK uses it. */
const checkoutWit = resolve(sdkDir, '../../wit');

const usage = `usage: portico-js-build --entry FILE [-o OUT.wasm] [--wit DIR] [--world NAME]

  --entry FILE   the plugin's entry module (.js, .mjs or .ts) exporting \`run\`
  -o, --out FILE the component to write [default: plugin.wasm]
  --wit DIR      the WIT folder with the world [default: ${checkoutWit}]
  --world NAME   the world [default: action-backend]
  --bundle FILE  also write the bundled JavaScript there (to read what gets embedded)`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      entry: { type: 'string' },
      out: { type: 'string', short: 'o', default: 'plugin.wasm' },
      wit: { type: 'string', default: checkoutWit },
      world: { type: 'string', default: 'action-backend' },
      bundle: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (e) {
  console.error(`${e.message}\n\n${usage}`);
  process.exit(2);
}
if (args.help) {
  console.log(usage);
  process.exit(0);
}
if (!args.entry) {
  console.error(`--entry is required\n\n${usage}`);
  process.exit(2);
}
if (!existsSync(args.entry)) {
  console.error(`${args.entry}: no such file`);
  process.exit(2);
}
if (!existsSync(args.wit)) {
  console.error(`${args.wit}: no such WIT folder (pass --wit DIR, the folder with action.wit and deps/)`);
  process.exit(2);
}

const started = performance.now();
const bundled = await build({
  entryPoints: [resolve(args.entry)],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  mainFields: ['module', 'main'],
  conditions: ['import', 'module', 'default'],
  external: ['portico:*', 'wasi:*'],
  alias: { '@portico/sdk': join(sdkDir, 'src/index.js') },
  keepNames: true,
  logLevel: 'warning',
}).catch(() => process.exit(1)); // esbuild has printed the errors
const source = bundled.outputFiles[0].text;
if (args.bundle) await writeFile(args.bundle, source);

/**
 * A copy of the WIT folder where the world `<world>-js` includes `<world>` plus the WASI imports
 * the SDK's `fs` and `env` modules use; its name, or an error naming the folder.
 */
async function extendedWorld(witDir, world, into) {
  await cp(witDir, into, { recursive: true });
  const declares = new RegExp(`^\\s*world\\s+${world}\\s*\\{`, 'm');
  for (const name of await readdir(into)) {
    if (!name.endsWith('.wit')) continue;
    const file = join(into, name);
    const text = await readFile(file, 'utf8');
    if (!declares.test(text)) continue;
    const extended = `${world}-js`;
    await writeFile(
      file,
      `${text}\n/// Added by portico-js-build: what @portico/sdk imports beyond the action's world.\n` +
        `world ${extended} {\n    include ${world};\n    import wasi:filesystem/preopens@0.2.12;\n` +
        `    import wasi:cli/environment@0.2.12;\n}\n`,
    );
    return extended;
  }
  throw new Error(`${witDir}: no world \`${world}\` in its .wit files`);
}

// componentize-js bakes paths relative to the working directory into the component and
// preopens it while pre-initialising: run it from an empty folder so nothing of ours leaks in.
const work = await mkdtemp(join(tmpdir(), 'portico-js-build-'));
const caller = process.cwd();
let component;
try {
  const wit = join(work, 'wit');
  const worldName = await extendedWorld(resolve(caller, args.wit), args.world, wit);
  process.chdir(work);
  ({ component } = await componentize(source, { sourceName: 'plugin.js', witPath: wit, worldName }));
} catch (e) {
  console.error(`componentize failed: ${e?.message ?? e}`);
  process.exit(1);
} finally {
  process.chdir(caller);
  await rm(work, { recursive: true, force: true });
}
await mkdir(dirname(resolve(args.out)), { recursive: true });
await writeFile(args.out, component);
const size = (await stat(args.out)).size;
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.error(`built ${args.out}: ${(size / 1048576).toFixed(1)} MiB in ${seconds} s`);
