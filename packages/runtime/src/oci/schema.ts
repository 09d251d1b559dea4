/**
 * config.json against the OCI runtime spec's own JSON Schema (src/oci/schema/*.json; where they
 * come from and what differs from upstream: src/oci/schema/README.md).
 *
 * Why a schema check besides validateSpec (spec.ts): validateSpec checks what box needs to run
 * a container; a bundle written for runc can be malformed in places box never reads, and runc's
 * users expect such a config refused up front, with the field named, not a TypeError later.
 *
 * Why a precompiled validator: box-runtime's start-up is benchmarked. Measured in fresh node
 * processes (scripts/bench-config-schema.mjs: import + compile + validate runc's default config;
 * 2-core machine, Node 20, medians of 21 runs): importing ajv and compiling these schemas at run
 * time took ~300 ms (min 213); importing the validator that ajv's standalone code generation
 * wrote at build time and validating took ~19 ms (min 14), ~7 ms of which is node's first
 * dynamic import of any module (measured before the other platforms' sections got a module of
 * their own, which made the one a Linux config loads a quarter smaller). So the validator is
 * generated (scripts/gen-config-schema.mjs) and checked in, ajv is a devDependency needed only to
 * regenerate it (the generated code imports nothing), and schema.test.ts fails when the
 * checked-in code is not what ajv makes now.
 */

import { SpecError } from '../errors.js';
import { validateConfig } from './schema/validate-config.generated.js';

/** One error as ajv reports it (the fields used here). */
interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/**
 * Rejects with a SpecError (code ESPEC) unless `config` matches the runtime spec's config schema. Its
 * message is one line naming the field by its JSON path, e.g.
 * `config.json: linux.namespaces[2].type: must be equal to one of the allowed values (...)`.
 *
 * The schema leaves most objects open: unknown fields, top-level or nested, are accepted (the
 * spec says runtimes MUST ignore unknown properties), so only the fields the spec defines are
 * checked.
 */
export async function validateConfigSchema(config: unknown): Promise<void> {
  if (!validateConfig(config)) throw refusal(validateConfig.errors);
  // The other platforms' sections (solaris, windows, vm, zos) are checked here only to be objects;
  // their own validators, a quarter of the generated code, load when a config has one.
  const record = config as Record<string, unknown>;
  const present = (Object.keys(PLATFORMS) as (keyof typeof PLATFORMS)[]).filter(
    (k) => record[k] !== undefined,
  );
  if (present.length === 0) return;
  const validators = await import('./schema/validate-platforms.generated.js');
  for (const section of present) {
    const validate = validators[PLATFORMS[section]];
    if (!validate(record[section])) throw refusal(validate.errors, `/${section}`);
  }
}

/**
 * Each section the main validator leaves open, and its validator: the generator's PLATFORMS
 * (scripts/gen-config-schema.mjs), which schema.test.ts checks this against.
 */
export const PLATFORMS = {
  solaris: 'validateSolaris',
  windows: 'validateWindows',
  vm: 'validateVm',
  zos: 'validateZos',
} as const;

/** The SpecError for ajv's errors, their paths below `at` (a section validated on its own). */
function refusal(errors: readonly SchemaError[] | null | undefined, at = ''): SpecError {
  const error = pick(errors ?? []);
  const found = error ? describe({ ...error, instancePath: `${at}${error.instancePath}` }) : undefined;
  return new SpecError(`config.json: ${found ?? 'does not match the runtime spec schema'}`);
}

/**
 * The error to report. A namespace entry is checked through `anyOf` (one branch, in the spec's
 * schema), which reports the branch's own error and then "must match a schema in anyOf" for the
 * entry: the first error that is not such a summary is the one that names the field.
 */
function pick(errors: readonly SchemaError[]): SchemaError | undefined {
  const SUMMARIES = new Set(['anyOf', 'oneOf', 'allOf', 'if']);
  return errors.find((e) => !SUMMARIES.has(e.keyword)) ?? errors[0];
}

function describe(error: SchemaError): string {
  const path = jsonPath(error.instancePath);
  if (error.keyword === 'required') {
    const field = String(error.params.missingProperty);
    return `${path ? `${path}.${field}` : field}: missing`;
  }
  let message = error.message ?? `fails ${error.keyword}`;
  if (error.keyword === 'enum' && Array.isArray(error.params.allowedValues))
    message += ` (${error.params.allowedValues.join(', ')})`;
  return `${path || '(top level)'}: ${message}`;
}

/** ajv's JSON Pointer (`/linux/namespaces/2/type`) as `linux.namespaces[2].type`. */
export function jsonPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (/^(0|[1-9][0-9]*)$/.test(part)) path += `[${part}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) path += path ? `.${part}` : part;
    else path += `[${JSON.stringify(part)}]`;
  }
  return path;
}
