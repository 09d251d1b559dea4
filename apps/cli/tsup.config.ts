import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('./package.json', 'utf8')) as { version: string };

// Bundled: the @box packages and what they use are inlined; koffi stays a dependency because
// it ships native binaries.
export default defineConfig({
  // The diff worker of @box/unionfs is loaded by URL next to the bundle (box commit/export).
  entry: {
    box: 'src/main.ts',
    'box-runtime': 'src/runtime/main.ts',
    'diff-worker': '../../packages/unionfs/src/diff-worker.ts',
  },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: false,
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
  // Bundled CommonJS modules (tar-stream) get a require() for their node: imports. `node --`:
  // Node 20 reads `--env-file FILE` anywhere on its command line, also in the script's own
  // arguments (`box run --env-file F` would load F into box's environment, or exit 9), unless
  // its options end before the script.
  banner: {
    js: "#!/usr/bin/env -S node --\nimport { createRequire as __boxCreateRequire } from 'node:module';\nconst require = __boxCreateRequire(import.meta.url);",
  },
  define: { BOX_VERSION: JSON.stringify(version) },
});
