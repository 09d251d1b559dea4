/**
 * V8 code caches for the chunks of box-runtime and of box, made at build time (tsup.config.ts)
 * next to each chunk as `NAME.cache`: loading a chunk then skips most of its parsing and
 * compiling. podman and containerd's shim start box-runtime for every step of a container, and
 * `create` loads about 370 KB of chunks: with the caches, callgrind counts 39 M instructions
 * fewer (about 7 ms). box-runtime's caches hold every function compiled, not only the chunks'
 * top-level code, so that `create` compiles nothing at run time (5.6 ms less; tsup.config.ts). Every box command is a Node.js start-up too (`box ps`: 342 M instructions
 * as ES modules without caches, 226 M as CommonJS with them; `node -e 0`: 85 M).
 *
 * Only files in this directory that have a cache are loaded this way; everything else (Node's
 * built-ins, koffi) goes through Node's loader as usual. V8 compiles from source when a cache was
 * made by another V8 or with other flags (another Node.js: slower, still right), but of the source
 * it checks only the length: a chunk edited to the same length would run its old code. So the
 * caches are build output made with the chunks and replaced with them (`clean` in tsup.config.ts),
 * and a cache older than its chunk, of another owner, or writable by others is not used
 * (trustedCache). They are never written at run time either (a cache a local user could write
 * would be code they could make root run). A test checks that
 * this Node.js accepts every one, of both programs (apps/e2e oci-runtime.test.ts).
 */
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import Module from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

type Loader = (module: Module, filename: string) => void;
interface ModuleInternals {
  _extensions: Record<string, Loader>;
  _cache: Record<string, Module | undefined>;
  wrap(source: string): string;
}

/**
 * The chunk's cache, when it can only be the build's: not older than the chunk (a chunk patched in
 * place after the build, even to the same length, is compiled from its source), owned by the
 * chunk's owner, and writable by nobody else. Otherwise undefined: the chunk loads from source.
 */
export function trustedCache(chunk: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(`${chunk.slice(0, -3)}.cache`, 'r');
    const cache = fstatSync(fd);
    const source = statSync(chunk);
    if (cache.mtimeMs < source.mtimeMs || cache.uid !== source.uid || (cache.mode & 0o022) !== 0)
      return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function useCodeCache(): void {
  const here = dirname(fileURLToPath(import.meta.url));
  const internals = Module as unknown as ModuleInternals;
  const fallback = internals._extensions['.js']!;
  const load: Loader = (module, filename) => {
    if (dirname(filename) !== here) return fallback(module, filename);
    const cachedData = trustedCache(filename);
    if (!cachedData) return fallback(module, filename);
    const script = new Script(internals.wrap(readFileSync(filename, 'utf8')), { filename, cachedData });
    const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
    wrapper.call(module.exports, module.exports, siblingRequire(module), module, filename, here);
  };
  internals._extensions['.js'] = load;

  /**
   * A chunk's `require`. The build names sibling chunks as `./NAME.js`; those are loaded straight
   * from this directory, past Node's resolution, which costs about 0.3 ms a chunk (a stat of
   * each candidate, a realpath, package.json lookups) and gives the same file: the directory is
   * already the real path (Node resolved the entry's), and a chunk is never a link. Each is
   * still one module in Node's cache, so a chunk required here and by Node's own require is
   * loaded once. Anything else (Node's built-ins, koffi) goes through Node's require.
   */
  const siblingRequire =
    (parent: Module) =>
    (id: string): unknown => {
      if (!id.startsWith('./') || id.includes('/', 2) || !id.endsWith('.js')) return parent.require(id);
      const filename = `${here}/${id.slice(2)}`;
      const cached = internals._cache[filename];
      if (cached) return cached.exports;
      const module = new Module(filename, parent);
      module.filename = filename;
      module.paths = parent.paths;
      // In the cache before it runs, as Node does, so that a cycle gets the exports made so far.
      internals._cache[filename] = module;
      try {
        load(module, filename);
      } catch (error) {
        delete internals._cache[filename];
        throw error;
      }
      module.loaded = true;
      return module.exports;
    };
}
