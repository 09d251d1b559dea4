#!/usr/bin/env node
// How long compileSeccomp takes for docker's default profile (root, docker's default
// capabilities, this machine's architecture): the first call in a fresh process (cold), then
// the cached call a container start makes (warm), and a compilation that misses the cache.
//
//   node packages/runtime/scripts/bench-seccomp.mjs
//
// It bundles src/seccomp with tsup into a temporary directory first: the package's build does
// not export this module yet.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'tsup';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(join(tmpdir(), 'bench-seccomp-'));
try {
  await build({
    entry: { seccomp: join(root, 'src/seccomp/index.ts'), spec: join(root, 'src/spec.ts') },
    outDir: out,
    format: ['esm'],
    silent: true,
    config: false,
  });
  const { compileSeccomp, resolveProfile, DOCKER_DEFAULT_PROFILE } = await import(
    pathToFileURL(join(out, 'seccomp.js')).href
  );
  const { DEFAULT_CAPABILITIES } = await import(pathToFileURL(join(out, 'spec.js')).href);

  const ms = (start) => (performance.now() - start).toFixed(3);
  let start = performance.now();
  const seccomp = resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities: DEFAULT_CAPABILITIES });
  const resolveCold = ms(start);
  start = performance.now();
  const { filter } = compileSeccomp(seccomp);
  const compileCold = ms(start);

  const per = (runs, f) => {
    const begin = performance.now();
    for (let i = 0; i < runs; i++) f(i);
    return ((performance.now() - begin) / runs).toFixed(4);
  };
  for (let i = 0; i < 200; i++) compileSeccomp(seccomp);
  const warm = per(2000, () => compileSeccomp(seccomp));
  // Distinct profiles (the cache keeps 16), each a full compilation.
  const variants = Array.from({ length: 64 }, (_, i) => ({ ...seccomp, defaultErrnoRet: 100 + i }));
  for (let r = 0; r < 5; r++) for (const v of variants) compileSeccomp(v);
  const uncached = per(variants.length * 10, (i) => compileSeccomp(variants[i % variants.length]));
  const resolveWarm = per(2000, () =>
    resolveProfile(DOCKER_DEFAULT_PROFILE, { capabilities: DEFAULT_CAPABILITIES }),
  );

  process.stdout.write(
    [
      `docker's default profile on ${process.arch}, node ${process.version}: ${filter.length / 8} instructions`,
      `resolveProfile: cold ${resolveCold} ms, warm ${resolveWarm} ms`,
      `compileSeccomp: cold ${compileCold} ms, warm (cached) ${warm} ms, warm uncached ${uncached} ms`,
      '',
    ].join('\n'),
  );
} finally {
  rmSync(out, { recursive: true, force: true });
}
