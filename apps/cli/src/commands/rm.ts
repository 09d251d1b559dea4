import { findContainer, isOwned, removeContainer } from '../containers.js';
import { CliError } from '../errors.js';
import { reconcile } from '../recovery.js';

/** `box rm`: removes stopped containers' records and writable layers. */
export async function rm(references: string[]): Promise<number> {
  await reconcile();
  let failed = false;
  for (const reference of references) {
    try {
      const state = findContainer(reference);
      if (isOwned(state.id)) {
        throw new CliError(
          `cannot remove container "${reference}": container is running: stop the container before removing`,
        );
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
