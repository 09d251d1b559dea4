import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import { transform } from 'esbuild';
import { defineConfig, type Options } from 'tsup';

const { version } = JSON.parse(readFileSync('./package.json', 'utf8')) as { version: string };

/** `node --`: Node 20 reads `--env-file FILE` anywhere on its command line, also in the script's
 * own arguments (`box run --env-file F` would load F into box's environment, or exit 9), unless
 * its options end before the script. */
const SHEBANG = '#!/usr/bin/env -S node --';

// Bundled: the @box packages and what they use are inlined; koffi stays a dependency because
// it ships native binaries.
const common: Options = {
  target: 'node20',
  platform: 'node',
  sourcemap: false,
  // Fewer bytes to read and parse at every start; names are kept, so stack traces still read.
  minifyWhitespace: true,
  minifySyntax: true,
  // One chunk per command (main.ts imports them lazily): a command loads only what it uses.
  splitting: true,
  noExternal: [/^@box\//],
  // The packages from their sources, not their built bundles: their own lazy imports (the
  // engine loads what an operation needs when it runs) become chunks here too, and what a
  // command does not use is left out of its chunks.
  // Their package.json says they have no side effects; esbuild reads that only for package
  // paths, so it is said again for their source files: a command's chunks then hold only what
  // it imports (ps does not load the spawn code, koffi's callers, unionfs or worker_threads).
  esbuildPlugins: [
    {
      name: 'box-sources-have-no-side-effects',
      setup(build) {
        build.onResolve({ filter: /.*/ }, async (args) => {
          if (args.pluginData?.boxResolved || args.kind === 'entry-point') return undefined;
          const resolved = await build.resolve(args.path, {
            kind: args.kind,
            importer: args.importer,
            resolveDir: args.resolveDir,
            pluginData: { boxResolved: true },
          });
          if (
            resolved.errors.length > 0 ||
            resolved.external ||
            !/\/packages\/[a-z]+\/src\//.test(resolved.path)
          )
            return undefined;
          return { path: resolved.path, namespace: resolved.namespace, sideEffects: false };
        });
      },
    },
  ],
  esbuildOptions(options) {
    const source = (path: string) => fileURLToPath(new URL(`../../packages/${path}`, import.meta.url));
    options.alias = {
      ...Object.fromEntries(
        ['sys', 'ns', 'cgroups', 'unionfs', 'image', 'runtime'].map((name) => [
          `@box/${name}`,
          source(`${name}/src/index.ts`),
        ]),
      ),
      '@box/runtime/engine': source('runtime/src/engine/index.ts'),
      '@box/runtime/oci': source('runtime/src/oci/index.ts'),
      '@box/runtime/seccomp': source('runtime/src/seccomp/index.ts'),
    };
  },
  external: ['koffi'],
  define: { BOX_VERSION: JSON.stringify(version) },
};

/**
 * box's and box-runtime's chunks as CommonJS: podman and containerd's shim start box-runtime for
 * every step of a container (create, start, state, kill, delete), so its start-up is benchmarked
 * against runc, and every box command is a start-up of its own too.
 * Node's ESM loader costs about 6 ms more than CommonJS before the first line of a program, and
 * more for each module (resolution, linking; measured with callgrind: `node e.mjs` 37 M
 * instructions over `node -e 0`, `node c.cjs` 4 M). esbuild splits only ESM, so the split chunks
 * are turned into CommonJS one by one: `import`s of sibling chunks become `require`s (shared
 * module instances, loaded when first needed), and a package.json makes `.js` CommonJS there.
 */
/**
 * Node built-ins that cost a start-up more than they are used: crypto (~5 ms with the streams it
 * pulls in) hashes only the layer links of images with hundreds of layers, child_process runs
 * newuidmap or a hook, dgram and the rest are rarer still. A chunk that imports one gets an
 * object that requires it on its first property read (`(0, import_crypto.createHash)(…)`), so
 * `create` of a container with no hooks and few layers never loads it.
 */
const LAZY_BUILTINS = [
  'child_process',
  'crypto',
  'dgram',
  'dns',
  'http',
  'https',
  'tls',
  'worker_threads',
  'zlib',
];
const LAZY_REQUIRE = new RegExp(
  `\\bvar (import_[\\w$]+)=require\\("((?:node:)?(?:${LAZY_BUILTINS.join('|')}))"\\);`,
  'g',
);
const LAZY_HELPER =
  'var __boxLazy=n=>{let m;return new Proxy({},{get:(_,k)=>(m??=require(n))[k],has:(_,k)=>k in(m??=require(n))})};';

/**
 * esbuild's CommonJS interop, where it only copies: a chunk's exports object (getters, one per
 * export) was copied into another of getters (`__toCommonJS`), and each `import()` of a sibling
 * chunk copied it again (`__toESM`, which for a module marked `__esModule` adds nothing but the
 * copy). Each copy is a closure and a property per export, made at load, and a call through
 * two getters at every use. A chunk's own exports object is its module's exports instead, marked
 * `__esModule` as esbuild marked the copy, and a sibling chunk's `import()` is its `require` (a
 * chunk without exports, whose `import()` only runs it, has no `__esModule` either way).
 * The build fails if esbuild's output no longer has the shape these rewrites expect.
 */
function withoutInteropCopies(name: string, code: string): string {
  const EXPORTS = /\bmodule\.exports=__toCommonJS\(stdin_exports\);/g;
  const SIBLING_IMPORT = /\b__toESM\(require\("(\.\/[\w.-]+\.js)"\)\)/g;
  if ((code.match(EXPORTS)?.length ?? 0) > 1)
    throw new Error(`${name}: esbuild's exports are not in the shape the build rewrites`);
  const rewritten = code
    .replace(EXPORTS, '__defProp(stdin_exports,"__esModule",{value:true}),module.exports=stdin_exports;')
    .replace(SIBLING_IMPORT, 'require("$1")');
  // Left over: a copy in a shape these rewrites do not know (a call of its own, renamed helpers).
  if (/\b__toCommonJS\d*\(|\b__toESM\d*\(require\("\.\//.test(rewritten))
    throw new Error(`${name}: esbuild's interop is not in the shape the build rewrites`);
  return rewritten;
}

/**
 * A chunk's V8 code cache (src/runtime/code-cache.ts), from the source as that loader wraps it.
 * V8 compiles a function's body when it is first called, and a cache made right after compiling
 * holds only what was compiled: the chunks' top-level code. `eager` compiles every function first
 * (V8's --no-lazy, for this one compile), so that a program which calls much of what it loads
 * never compiles at run time. --lazy, the default, is back before the cache is made: V8 stamps a
 * cache with a hash of its flags and rejects one made under other flags.
 * Measured (24-30 interleaved rounds against the lazy caches): box-runtime's `create` 5.6 ms
 * faster, start and delete unchanged, with 870 KB of caches instead of 240 KB; box's commands
 * load far more than they run, and eager caches (2.7 MB) made `box images` 11 ms and `box inspect`
 * 9 ms slower, so box keeps lazy ones.
 */
function codeCache(path: string, code: string, eager: boolean): Buffer {
  const compile = () => new Script(Module.wrap(code), { filename: path });
  if (!eager) return compile().createCachedData();
  setFlagsFromString('--no-lazy');
  let script: Script;
  try {
    script = compile();
  } finally {
    setFlagsFromString('--lazy');
  }
  return script.createCachedData();
}

async function toCommonJS(dir: string, entry: string, { eager }: { eager: boolean }): Promise<void> {
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.js'))) {
    const path = join(dir, name);
    const { code: transformed } = await transform(readFileSync(path, 'utf8'), {
      format: 'cjs',
      target: 'node20',
      platform: 'node',
      // import() of a chunk becomes a require() in a promise, not the ESM loader.
      supported: { 'dynamic-import': false },
      // import.meta.url, computed where it is read (koffi's loader, the diff worker's URL), not by
      // every chunk at its load: a URL of each chunk's path costs about 0.1 ms a chunk.
      define: { 'import.meta.url': '__boxMeta.url', 'import.meta.dirname': '__dirname' },
      // Strict, as the ES modules these chunks were (esbuild adds no "use strict" of its own).
      banner: `${name === entry ? `${SHEBANG}\n` : ''}"use strict";var __boxMeta={get url(){return require("node:url").pathToFileURL(__filename).href}};${LAZY_HELPER}`,
      minifyWhitespace: true,
    });
    const code = withoutInteropCopies(name, transformed.replace(LAZY_REQUIRE, 'var $1=__boxLazy("$2");'));
    writeFileSync(path, code);
    // Whatever the build's umask: nobody but the owner may change what root runs. The entry is run
    // through its #! line (as a bin, or by podman and containerd's shim for box-runtime).
    chmodSync(path, name === entry ? 0o755 : 0o644);
    // Not for the entry, which Node itself loads before the loader is in place.
    if (name !== entry) {
      const cache = join(dir, `${name.slice(0, -3)}.cache`);
      writeFileSync(cache, codeCache(path, code, eager));
      chmodSync(cache, 0o644);
    }
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
}

export default defineConfig([
  {
    ...common,
    // The diff worker of @box/unionfs is loaded by URL next to the bundle (box commit/export).
    entry: {
      box: 'src/entry.ts',
      'diff-worker': '../../packages/unionfs/src/diff-worker.ts',
    },
    format: ['esm'],
    outDir: 'dist',
    // Not dist/runtime, which the other build writes at the same time.
    clean: ['*.js', '*.cache'],
    // CommonJS with code caches as box-runtime's (below): every box command is a Node start-up.
    onSuccess: () => toCommonJS('dist', 'box.js', { eager: false }),
  },
  {
    ...common,
    entry: { 'box-runtime': 'src/runtime/entry.ts' },
    format: ['esm'],
    outDir: 'dist/runtime',
    clean: true,
    onSuccess: () => toCommonJS('dist/runtime', 'box-runtime.js', { eager: true }),
  },
]);
