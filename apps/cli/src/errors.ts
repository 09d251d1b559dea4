import { ChildSetupError } from '@box/ns';
import { CommandNotExecutableError, CommandNotFoundError, RuntimeError, SpecError } from '@box/runtime';

/** Docker's exit codes for failures of the tool itself and of the command. */
export const EXIT_BOX_ERROR = 125;
export const EXIT_NOT_EXECUTABLE = 126;
export const EXIT_NOT_FOUND = 127;

/** An error the CLI reports as one line and an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = EXIT_BOX_ERROR,
  ) {
    super(message);
  }
}

/** Maps start-up failures to docker's messages and exit codes. */
export function translateStartError(error: unknown): unknown {
  if (error instanceof CommandNotFoundError) return new CliError(error.message, EXIT_NOT_FOUND);
  if (error instanceof CommandNotExecutableError) return new CliError(error.message, EXIT_NOT_EXECUTABLE);
  if (error instanceof ChildSetupError) {
    if (error.syscall === 'execve') {
      const code = error.code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
      return new CliError(`failed to start the container: ${error.message}`, code);
    }
    return new CliError(`failed to start the container: ${error.message}`);
  }
  if (error instanceof SpecError) return new CliError(error.message);
  // As a fork that fails in the container (docker: "OCI runtime exec failed", 126).
  if (error instanceof RuntimeError && error.code === 'EPIDSLIMIT') {
    return new CliError(error.message, EXIT_NOT_EXECUTABLE);
  }
  return error;
}
