/** `box system service`: serves as the owner of detached containers until idle (see @box/runtime's engine). */
import { markCloseOnExecFrom } from '@box/sys';
import { openEngine } from '../engine.js';

export async function service(): Promise<number> {
  // Nothing of the command that started it: no cwd on the caller's file system, no inherited fd
  // reaching what it starts.
  process.chdir('/');
  markCloseOnExecFrom(3);
  const idleMs = Number(process.env.BOX_SERVICE_IDLE_MS ?? 30_000);
  await openEngine().serve({ idleMs });
  return 0;
}
