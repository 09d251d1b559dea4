import { defineLibraryConfig } from '@box/tsup-config';
import { defineConfig } from 'tsup';

// The engine alone is a subpath of its own (`@box/runtime/engine`): what it imports at once is
// what listing containers needs; the rest is loaded by the operations that use it. The seccomp
// compiler and docker's profiles are one too (`@box/runtime/seccomp`), and the runc-compatible
// runtime (`@box/runtime/oci`).
export default defineConfig(
  defineLibraryConfig({
    entry: {
      index: 'src/index.ts',
      'engine/index': 'src/engine/index.ts',
      'seccomp/index': 'src/seccomp/index.ts',
      'oci/index': 'src/oci/index.ts',
    },
  }),
);
