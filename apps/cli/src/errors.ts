/**
 * The CLI's errors and the one place that maps a failure to docker's exit statuses: 125 for
 * box's own refusals, 126 for a command that cannot be run, 127 for one that is not there, and 1
 * for "no such container" and refusals of operations on several containers (as docker).
 */

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

const BY_CODE: Record<string, number> = {
  // The command of a container or exec.
  ENOCMD: EXIT_NOT_FOUND,
  ENOEXECCMD: EXIT_NOT_EXECUTABLE,
  // As a fork that fails in the container (docker: "OCI runtime exec failed", 126).
  EPIDSLIMIT: EXIT_NOT_EXECUTABLE,
  ENOCONTAINER: 1,
  EAMBIGUOUS: 1,
  ENOVOLUME: 1,
  EVOLUMEINUSE: 1,
  ENONETWORK: 1,
  ENETWORKINUSE: 1,
  // A copy that found nothing to copy, or failed on the way (docker cp: 1).
  ENOSRC: 1,
  ECOPY: 1,
  // top's ps failed or printed no PID column (docker: an error of the daemon, 1).
  EPS: 1,
};

/** Whether `error` is an engine error (a string `code`), optionally of one code; without loading @box/runtime. */
export function isRuntimeError(error: unknown, code?: string): error is Error & { code: string } {
  const own = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof own === 'string' && (code === undefined || own === code);
}

/** docker's exit status for an error. */
export function exitStatusOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  // Errors of the engine carry a string `code` (RuntimeError). Read without importing
  // @box/runtime: every command loads this module, and most need nothing else of the engine.
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? (BY_CODE[code] ?? EXIT_BOX_ERROR) : EXIT_BOX_ERROR;
}
