/**
 * V8 code caches for the chunks of box-runtime and of box, made at build time (tsup.config.ts)
 * next to each chunk as `NAME.cache`: loading a chunk then skips most of its parsing and
 * compiling. podman and containerd's shim start box-runtime for every step of a container, and
 * `create` loads about 370 KB of chunks: with the caches, callgrind counts 39 M instructions
 * fewer (about 7 ms). box-runtime's caches hold every function compiled, not only the chunks'
 * top-level code, so that `create` compiles nothing at run time (5.6 ms less; tsup.config.ts).
 * Every box command is a Node.js start-up too (`box ps`: 342 M instructions as ES modules
 * without caches, 226 M as CommonJS with them; `node -e 0`: 85 M).
 *
 * Only files in this directory that have a cache are loaded this way; everything else (Node's
 * built-ins, koffi) goes through Node's loader as usual. V8 compiles from source when a cache was
 * made by another V8 or with other flags (another Node.js: slower, still right), but of the source
 * it checks only the length: a chunk edited to the same length would run its old code. So the
 * caches are build output made with the chunks and replaced with them (`clean` in tsup.config.ts),
 * and a cache older than its chunk, of another owner, or writable by others is not used
 * (trustedCache). They are never written at run time either (a cache a local user could write
 * would be code they could make root run). A test checks that
 * this Node.js accepts every one, of both programs (apps/e2e/tests/oci-runtime.test.ts).
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

type Loader = (module: Module, filename: string) => void;
interface ModuleInternals {
  _extensions: Record<string, Loader>;
  _cache: Record<string, Module | undefined>;
  wrap(source: string): string;
}

/**
 * Where caches are read: one buffer for all, reused. V8 copies a cache into its heap while the
 * chunk compiles and keeps no reference to the bytes, so the next chunk's cache can overwrite
 * them. A buffer per cache was new memory each time (the earlier ones are freed only by a later
 * GC), a page fault per 4 KiB, and on a virtual machine a fault can cost 14 µs: reading all of
 * box-runtime's caches took 4.4-6.8 ms that way and 2.3-2.5 ms into one buffer (the 26 caches,
 * 916 KB, in fresh processes).
 */
let pool = Buffer.alloc(0);

/**
 * The chunk's cache, when it can only be the build's: not older than the chunk (a chunk patched in
 * place after the build, even to the same length, is compiled from its source), owned by the
 * chunk's owner, and writable by nobody else. Otherwise undefined: the chunk loads from source.
 * The bytes are a view of the shared buffer, valid until the next call overwrites them: use them
 * at once (the loader hands them to V8, which copies them), never keep them.
 */
export function trustedCache(chunk: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(`${chunk.slice(0, -3)}.cache`, 'r');
    const cache = fstatSync(fd);
    const source = statSync(chunk);
    if (cache.mtimeMs < source.mtimeMs || cache.uid !== source.uid || (cache.mode & 0o022) !== 0)
      return undefined;
    if (cache.size > pool.length)
      pool = Buffer.allocUnsafeSlow(Math.max(cache.size, 2 * pool.length, 256 << 10));
    let length = 0;
    for (let n = -1; n !== 0 && length < cache.size; length += n)
      n = readSync(fd, pool, length, cache.size - length, length);
    // Shorter than it was a moment ago: changed while read, so not the build's as checked.
    return length === cache.size ? pool.subarray(0, length) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function useCodeCache(): void {
  // The build defines it as the chunk's __dirname: no file URL made and parsed back at start-up.
  const here = import.meta.dirname;
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
   * from this directory, past Node's resolution, which cost 0.1-0.7 ms a chunk (a stat of each
   * candidate, a realpath, package.json lookups; the first the most) and gives the same file:
   * the directory is already the real path (Node resolved the entry's), and a chunk is never a
   * link. Each is still one module in Node's cache, so a chunk required here and by Node's own
   * require is loaded once. Anything else (Node's built-ins, koffi) goes through Node's require.
   */
  const siblingRequire =
    (parent: Module) =>
    (id: string): unknown => {
      if (!id.startsWith('./') || id.includes('/', 2) || !id.endsWith('.js')) return parent.require(id);
      const filename = join(here, id.slice(2));
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
