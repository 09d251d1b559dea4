/** `box top CONTAINER [ps OPTIONS]`: the host's ps over a running container's processes. */
import { openEngine } from '../engine.js';
import { table } from '../output/index.js';

export async function top(reference: string, psOptions: readonly string[] = []): Promise<number> {
  // docker sends the options as one string, which ps gets split at spaces.
  const { titles, processes } = await openEngine().psTop(reference, psOptions.join(' '));
  process.stdout.write(table([titles, ...processes], { minWidth: 20 }));
  return 0;
}
