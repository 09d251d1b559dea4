import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('./package.json', 'utf8')) as { version: string };

// One bundled file: the @box packages and commander are inlined; koffi stays a
// dependency because it ships native binaries.
export default defineConfig({
  // The diff worker of @box/unionfs is loaded by URL next to the bundle (box commit/export).
  entry: { box: 'src/main.ts', 'diff-worker': '../../packages/unionfs/src/diff-worker.ts' },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: false,
  // One chunk per command (main.ts imports them lazily): a command loads only what it uses.
  splitting: true,
  noExternal: [/^@box\//, 'commander'],
  external: ['koffi'],
  // commander is CommonJS: give the ESM bundle a require() for its node: imports.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __boxCreateRequire } from 'node:module';\nconst require = __boxCreateRequire(import.meta.url);",
  },
  define: { BOX_VERSION: JSON.stringify(version) },
});
