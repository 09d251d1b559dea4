#!/usr/bin/env node
// Writes src/oci/schema/validate-config.generated.js and validate-platforms.generated.js: the OCI
// runtime spec's config.json JSON Schema (src/oci/schema/*.json, see the README there) compiled by
// ajv into standalone modules, the other platforms' sections apart (PLATFORMS).
//
//   node packages/runtime/scripts/gen-config-schema.mjs            # write the files
//   node packages/runtime/scripts/gen-config-schema.mjs --check    # exit 1 if one is out of date
//
// Why generate at all: box-runtime's start-up is benchmarked, and importing ajv and compiling
// these eleven schema files at every start costs far more than importing the compiled module
// (scripts/bench-config-schema.mjs measures both; src/oci/schema.ts has the numbers). The test
// src/oci/schema.test.ts runs generate() and compares it with the checked-in files, so a schema
// or ajv change can't leave a stale validator behind unnoticed.
//
// The schema files are copied as published; what this project changes (OVERLAY below) is
// applied here, in code, so that the copies stay byte for byte what upstream has.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Ajv from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SCHEMA_DIR = join(HERE, '../src/oci/schema');
export const OUTPUT = join(SCHEMA_DIR, 'validate-config.generated.js');
/** The validators of the other platforms' sections, loaded only for a config that has one. */
export const PLATFORMS_OUTPUT = join(SCHEMA_DIR, 'validate-platforms.generated.js');

/**
 * config-schema.json's sections for other platforms than Linux, with the name of each one's
 * validator. A quarter of the generated code, which a Linux config never needs: the main
 * validator checks only that each is an object, src/oci/schema.ts runs these on what is there.
 */
export const PLATFORMS = {
  solaris: 'validateSolaris',
  windows: 'validateWindows',
  vm: 'validateVm',
  zos: 'validateZos',
};

/** The files config-schema.json reaches through $ref, each registered under its file name. */
export const SCHEMA_FILES = [
  'config-schema.json',
  'defs.json',
  'config-linux.json',
  'defs-linux.json',
  'config-solaris.json',
  'config-windows.json',
  'defs-windows.json',
  'config-vm.json',
  'defs-vm.json',
  'config-zos.json',
  'defs-zos.json',
];

/**
 * What v1.2 has that the copied defs.json / defs-linux.json (older upstream revisions: no v1.2
 * copy of them was to be had, see the README) lack. Values are those of runtime-spec's
 * specs-go/config.go at 4bae300dd0b4d5f8951653c75850853640aa2192 (a v1.2.1-era commit).
 * Without the first two, config-schema.json (v1.2) does not even compile; without the rest,
 * valid v1.2 configs (a time namespace, SCMP_ACT_LOG, riscv64) would be refused.
 */
export const OVERLAY = {
  'defs.json': {
    definitions: { Umask: { $ref: '#/definitions/uint32' } },
  },
  'defs-linux.json': {
    definitions: {
      SchedulerPolicy: {
        type: 'string',
        enum: [
          'SCHED_OTHER',
          'SCHED_FIFO',
          'SCHED_RR',
          'SCHED_BATCH',
          'SCHED_ISO',
          'SCHED_IDLE',
          'SCHED_DEADLINE',
        ],
      },
      SchedulerFlag: {
        type: 'string',
        enum: [
          'SCHED_FLAG_RESET_ON_FORK',
          'SCHED_FLAG_RECLAIM',
          'SCHED_FLAG_DL_OVERRUN',
          'SCHED_FLAG_KEEP_POLICY',
          'SCHED_FLAG_KEEP_PARAMS',
          'SCHED_FLAG_UTIL_CLAMP_MIN',
          'SCHED_FLAG_UTIL_CLAMP_MAX',
        ],
      },
    },
    // Replaced, not added: upstream's FileMode stops at 512, but podman 4 (and containerd before
    // 1.5) send a device's whole st_mode, its file type bits included (S_IFCHR | 0600 = 8576),
    // and runc takes it, dropping those bits (runc#2804, runtime-spec#1082). Up to 16 bits, as a
    // mode_t holds them; src/spec.ts keeps only the permission bits.
    replacements: {
      FileMode: {
        description: 'File permissions mode, in decimal; file type bits are ignored',
        type: 'integer',
        minimum: 0,
        maximum: 0o177777,
      },
    },
    enumAdditions: {
      NamespaceType: ['time'],
      SeccompAction: ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY'],
      SeccompArch: [
        'SCMP_ARCH_RISCV64',
        'SCMP_ARCH_LOONGARCH64',
        'SCMP_ARCH_M68K',
        'SCMP_ARCH_SH',
        'SCMP_ARCH_SHEB',
      ],
    },
  },
};

/** The schema files as read, with OVERLAY applied. */
export function loadSchemas(dir = SCHEMA_DIR) {
  const schemas = {};
  for (const file of SCHEMA_FILES) {
    const schema = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const overlay = OVERLAY[file];
    if (overlay) {
      for (const [name, definition] of Object.entries(overlay.definitions ?? {})) {
        if (schema.definitions[name])
          throw new Error(`${file}: ${name} is defined already: drop it from OVERLAY`);
        schema.definitions[name] = definition;
      }
      for (const [name, definition] of Object.entries(overlay.replacements ?? {})) {
        if (!schema.definitions[name]) throw new Error(`${file}: ${name} is not defined: nothing to replace`);
        schema.definitions[name] = definition;
      }
      for (const [name, values] of Object.entries(overlay.enumAdditions ?? {})) {
        const list = schema.definitions[name]?.enum;
        if (!list) throw new Error(`${file}: ${name} has no enum`);
        for (const value of values) if (!list.includes(value)) list.push(value);
      }
    }
    // draft-04 is what upstream declares; nothing in these files reads differently under ajv's
    // default draft (no `id`, no boolean exclusiveMinimum), and ajv ships no draft-04 meta-schema.
    delete schema.$schema;
    schemas[file] = schema;
  }
  return schemas;
}

/**
 * The standalone validators' sources: OUTPUT's `export const validateConfig = ...` (the other
 * platforms' sections checked only to be objects) and PLATFORMS_OUTPUT's, one per section.
 */
export function generate(dir = SCHEMA_DIR) {
  // strict: false: upstream's schemas are not written for ajv's strict mode (e.g. `type` beside
  // allOf). allErrors stays false: one error is all the caller reports, and it stops early.
  const compile = (schemas, refs) => {
    const ajv = new Ajv({ strict: false, inlineRefs: false, code: { source: true, esm: true } });
    for (const [file, schema] of Object.entries(schemas)) ajv.addSchema(schema, file);
    return `${HEADER}${standaloneCode(ajv, refs)}\n`;
  };
  const schemas = loadSchemas(dir);
  const linux = structuredClone(schemas);
  for (const name of Object.keys(PLATFORMS)) {
    const section = linux['config-schema.json'].properties[name];
    if (section?.$ref !== `config-${name}.json#/${name}`)
      throw new Error(`config-schema.json: ${name} is not the $ref to config-${name}.json it was`);
    linux['config-schema.json'].properties[name] = { type: 'object' };
  }
  return {
    [OUTPUT]: compile(linux, { validateConfig: 'config-schema.json' }),
    [PLATFORMS_OUTPUT]: compile(
      schemas,
      Object.fromEntries(Object.entries(PLATFORMS).map(([name, fn]) => [fn, `config-${name}.json#/${name}`])),
    ),
  };
}

const HEADER = `// Generated by packages/runtime/scripts/gen-config-schema.mjs from src/oci/schema/*.json: do not
// edit by hand.
/* biome-ignore-all lint: generated by ajv */
// biome-ignore-all format: generated by ajv
`;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const [path, text] of Object.entries(generate())) {
    if (process.argv.includes('--check')) {
      if (readFileSync(path, 'utf8') !== text) {
        process.stderr.write(
          `${path} is out of date: run node packages/runtime/scripts/gen-config-schema.mjs\n`,
        );
        process.exit(1);
      }
    } else {
      writeFileSync(path, text);
    }
  }
}
