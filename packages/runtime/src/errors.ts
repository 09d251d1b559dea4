/** Base class of @box/runtime errors; `code` identifies the kind. */
export class RuntimeError extends Error {
  override readonly name: string = 'RuntimeError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The OCI configuration is invalid. */
export class SpecError extends RuntimeError {
  override readonly name = 'SpecError';
  constructor(message: string) {
    super('ESPEC', message);
  }
}

/** The command was not found in the container (docker: exit 127). */
export class CommandNotFoundError extends RuntimeError {
  override readonly name = 'CommandNotFoundError';
  constructor(
    readonly command: string,
    detail: string,
  ) {
    super('ENOCMD', `exec: "${command}": ${detail}`);
  }
}

/** The command exists but cannot be executed (docker: exit 126). */
export class CommandNotExecutableError extends RuntimeError {
  override readonly name = 'CommandNotExecutableError';
  constructor(
    readonly command: string,
    detail: string,
  ) {
    super('ENOEXECCMD', `exec: "${command}": ${detail}`);
  }
}
