import { defineLibraryConfig } from '@box/tsup-config';
import { defineConfig } from 'tsup';

// The diff worker is its own entry point (dist/diff-worker.js, loaded by URL); splitting shares
// the code both use (and UnionfsError) between the two.
export default defineConfig(
  defineLibraryConfig({ entry: ['src/index.ts', 'src/diff-worker.ts'], splitting: true }),
);
