import { findContainer, removeContainer } from '../containers.js';
import { CliError } from '../errors.js';

/** `box rm`: removes stopped containers' records and writable layers. */
export function rm(references: string[]): number {
  let failed = false;
  for (const reference of references) {
    try {
      const state = findContainer(reference);
      if (state.status === 'running' && state.pid !== undefined && isAlive(state.pid)) {
        throw new CliError(`cannot remove container ${reference}: container is running`);
      }
      removeContainer(state);
      process.stdout.write(`${reference}\n`);
    } catch (error) {
      failed = true;
      process.stderr.write(`box: ${(error as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
