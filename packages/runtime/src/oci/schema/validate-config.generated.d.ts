// Types of validate-config.generated.js (ajv's standalone validator of config-schema.json).

export interface ValidateConfigError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

export declare const validateConfig: {
  (data: unknown): boolean;
  errors?: ValidateConfigError[] | null;
};
