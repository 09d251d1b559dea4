import { defineLibraryConfig } from '@box/tsup-config';
import { defineConfig } from 'tsup';

// Two entry points share one copy of the code (and of CgroupError) through splitting.
export default defineConfig(
  defineLibraryConfig({ entry: ['src/index.ts', 'src/testing.ts'], splitting: true }),
);
