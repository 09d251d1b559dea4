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
