#!/usr/bin/env node
// What checking config.json against the runtime spec's schema costs a fresh process, the way
// box-runtime meets it at every start: import + compile + validate runc's default config, with
// ajv compiling the schema files at run time versus the validator that
// scripts/gen-config-schema.mjs generated at build time.
//
//   node packages/runtime/scripts/bench-config-schema.mjs [runs]
//
// Each run is a new `node` process; the time is measured inside it, from before the first
// import to after validate() returns, and the median of the runs is printed.

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const url = (path) => pathToFileURL(join(root, path)).href;
const fixture = join(root, 'src/oci/schema/fixtures/runc-1.1.5-spec.json');

const PROGRAMS = {
  // loadSchemas reads the eleven files and applies the overlay: what a run-time compile does.
  'ajv at run time': `
    const t0 = performance.now();
    const { default: Ajv } = await import('ajv');
    const { loadSchemas } = await import(${JSON.stringify(url('scripts/gen-config-schema.mjs'))});
    const ajv = new Ajv({ strict: false, inlineRefs: false });
    for (const [file, schema] of Object.entries(loadSchemas())) ajv.addSchema(schema, file);
    const validate = ajv.getSchema('config-schema.json');
    const config = JSON.parse(readFileSync(${JSON.stringify(fixture)}, 'utf8'));
    if (!validate(config)) throw new Error('invalid');
    process.stdout.write(String(performance.now() - t0));`,
  'ajv standalone (generated)': `
    const t0 = performance.now();
    const { validateConfig } = await import(${JSON.stringify(url('src/oci/schema/validate-config.generated.js'))});
    const config = JSON.parse(readFileSync(${JSON.stringify(fixture)}, 'utf8'));
    if (!validateConfig(config)) throw new Error('invalid');
    process.stdout.write(String(performance.now() - t0));`,
};

const runs = Number(process.argv[2] ?? 15);
for (const [name, body] of Object.entries(PROGRAMS)) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const child = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import { readFileSync } from 'node:fs';\n${body}`],
      { cwd: root, encoding: 'utf8' },
    );
    if (child.status !== 0) throw new Error(`${name}: ${child.stderr}`);
    times.push(Number(child.stdout));
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  process.stdout.write(
    `${name}: median ${median.toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${times.at(-1).toFixed(1)}, ${runs} runs)\n`,
  );
}
