/**
 * Files, for an action that grants `filesystem: "scratch"` (a fresh, empty `/scratch` per run).
 *
 * StarlingMonkey, the engine componentize-js embeds, has no file API, so this calls the
 * `wasi:filesystem` imports directly (the build adds them to the world: see
 * bin/portico-js-build.mjs). Paths are absolute, e.g. `/scratch/out.txt`. Errors are thrown as
 * `fs.FsError` (a `Failed`) with `code` the WASI error code (`no-entry`, `access`, ...); a path
 * outside every granted folder has code `no-entry`, as for a Rust plugin.
 */
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { Failed } from './failure.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A file operation failed; `code` is the WASI `error-code`, e.g. `no-entry` or `access`. */
export class FsError extends Failed {
  constructor(path, code, detail) {
    super(`${path}: ${code}${detail ? ` (${detail})` : ''}`);
    this.path = path;
    this.code = code;
  }
}

/** The granted folder holding `path`, and the path relative to it. */
function locate(path) {
  const clean = String(path).replace(/\/+$/, '') || '/';
  for (const [dir, root] of getDirectories()) {
    const base = root.replace(/\/+$/, '');
    if (clean === base) return [dir, '.'];
    if (clean.startsWith(`${base}/`)) return [dir, clean.slice(base.length + 1)];
  }
  throw new FsError(path, 'no-entry', 'not under a folder the action grants; `filesystem: "scratch"` gives /scratch');
}

/** Runs a filesystem call; a thrown WASI error code becomes `FsError`. */
function call(path, fn) {
  try {
    return fn();
  } catch (e) {
    if (e !== null && typeof e === 'object' && 'payload' in e) throw new FsError(path, String(e.payload));
    throw e;
  }
}

function open(path, openFlags, flags) {
  const [dir, rel] = locate(path);
  return call(path, () => dir.openAt({ symlinkFollow: false }, rel, openFlags, flags));
}

/** Writes (creates or replaces) a file with text or bytes. */
export function writeFile(path, content) {
  const bytes = typeof content === 'string' ? encoder.encode(content) : content;
  const file = open(path, { create: true, truncate: true }, { write: true });
  try {
    let at = 0;
    while (at < bytes.length) at += Number(call(path, () => file.write(bytes.subarray(at), BigInt(at))));
  } finally {
    file[Symbol.dispose]();
  }
}

/** Reads a whole file as bytes. */
export function readBytes(path) {
  const file = open(path, {}, { read: true });
  try {
    const chunks = [];
    let size = 0;
    for (;;) {
      const [chunk, end] = call(path, () => file.read(65536n, BigInt(size)));
      chunks.push(chunk);
      size += chunk.length;
      if (end || chunk.length === 0) break;
    }
    const out = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  } finally {
    file[Symbol.dispose]();
  }
}

/** Reads a whole file as UTF-8 text. */
export function readFile(path) {
  return decoder.decode(readBytes(path));
}

/** The names in a folder, in the order the host gives them. */
export function readDir(path) {
  const dir = open(path, { directory: true }, { read: true });
  try {
    const entries = call(path, () => dir.readDirectory());
    const names = [];
    try {
      for (let e = call(path, () => entries.readDirectoryEntry()); e; e = call(path, () => entries.readDirectoryEntry())) {
        names.push(e.name);
      }
    } finally {
      entries[Symbol.dispose]();
    }
    return names;
  } finally {
    dir[Symbol.dispose]();
  }
}
