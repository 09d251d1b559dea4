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

/** A seccomp profile is invalid, or asks for what this kernel or compiler cannot do. */
export class SeccompError extends RuntimeError {
  override readonly name = 'SeccompError';
  constructor(message: string) {
    super('ESECCOMP', message);
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

/**
 * Codes of the container engine's refusals (createEngine), besides the start-up errors above:
 * - ENOCONTAINER: no container has that name, ID or ID prefix;
 * - EAMBIGUOUS: an ID prefix names more than one container;
 * - ENAMEINUSE: the name is taken;
 * - ESTATE: the container is not in a state that allows the operation (exec in a stopped one);
 * - EINVAL: an option or argument is invalid;
 * - ENOIMAGE: the image provider has no such image;
 * - ENOVOLUME, EVOLUMEINUSE: volumes;
 * - ESTATEDIR: the state directory cannot be used;
 * - ESERVICE: the service that owns detached containers cannot be reached;
 * - EPS: the host's `ps` failed for `top`, or printed no PID column.
 */
export type EngineErrorCode =
  | 'ENOCONTAINER'
  | 'EAMBIGUOUS'
  | 'ENAMEINUSE'
  | 'ESTATE'
  | 'EINVAL'
  | 'ENOIMAGE'
  | 'ENOVOLUME'
  | 'EVOLUMEINUSE'
  | 'ESTATEDIR'
  | 'ESERVICE'
  | 'ENONETWORK'
  | 'ENETWORKEXISTS'
  | 'ENETWORKINUSE'
  | 'EPORTINUSE'
  | 'EPS'
  | 'EFUSE';

/** A refusal of the container engine; nothing was changed. */
export class EngineError extends RuntimeError {
  override readonly name = 'EngineError';
  constructor(
    override readonly code: EngineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Whether `error` is an error of @box/runtime, optionally of one `code`. */
export function isRuntimeError(error: unknown, code?: string): error is RuntimeError {
  return error instanceof RuntimeError && (code === undefined || error.code === code);
}
