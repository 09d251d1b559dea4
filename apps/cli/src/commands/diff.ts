/** `box diff`: the container's changes against its image, one `A|C|D PATH` line each, as docker. */
import { openEngine } from '../engine.js';

export async function diff(reference: string): Promise<number> {
  const changes = await openEngine().diff(reference);
  process.stdout.write(changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
  return 0;
}
