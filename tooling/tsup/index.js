// Shared tsup options for every published @box package: ESM, Node 20, declarations.
/** @param {import('tsup').Options} [overrides] */
export function defineLibraryConfig(overrides = {}) {
  return {
    entry: ['src/index.ts'],
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: false,
    treeshake: true,
    ...overrides,
  };
}
