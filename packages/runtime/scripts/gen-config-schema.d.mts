// Types of gen-config-schema.mjs, for the test that runs it.

export const SCHEMA_DIR: string;
export const OUTPUT: string;
export const PLATFORMS_OUTPUT: string;
export const PLATFORMS: Record<string, string>;
export const SCHEMA_FILES: string[];
export const OVERLAY: Record<string, unknown>;
export function loadSchemas(dir?: string): Record<string, Record<string, unknown>>;
export function generate(dir?: string): Record<string, string>;
