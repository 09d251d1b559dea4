// Types of validate-platforms.generated.js (ajv's standalone validators of config-schema.json's
// sections for other platforms than Linux).

import type { ValidateConfigError } from './validate-config.generated.js';

interface SectionValidator {
  (data: unknown): boolean;
  errors?: ValidateConfigError[] | null;
}

export declare const validateSolaris: SectionValidator;
export declare const validateWindows: SectionValidator;
export declare const validateVm: SectionValidator;
export declare const validateZos: SectionValidator;
