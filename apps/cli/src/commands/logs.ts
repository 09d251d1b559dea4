/** `box logs`: a container's output from its json-file log, optionally followed. */
import { join } from 'node:path';
import { readLogs } from '@box/runtime';
import { containerDir, findContainer } from '../containers.js';
import { CliError } from '../errors.js';
import { waitExited } from '../lifecycle.js';
import { reconcile } from '../recovery.js';

export interface LogsFlags {
  follow?: boolean;
  tail?: string;
  timestamps?: boolean;
  /** Stop following when the container exits, and return its exit code (start -a). */
  untilExit?: boolean;
}

function parseTail(value: string | undefined): number | undefined {
  if (value === undefined || value === 'all') return undefined;
  if (!/^-?\d+$/.test(value)) throw new CliError(`invalid --tail "${value}": expected a number or "all"`);
  const n = Number(value);
  return n < 0 ? undefined : n;
}

export async function logs(reference: string, flags: LogsFlags): Promise<number> {
  await reconcile();
  const tail = parseTail(flags.tail);
  const state = findContainer(reference);
  const exited = flags.follow ? waitExited(state.id).catch(() => undefined) : undefined;
  const path = join(containerDir(state.id), 'json.log');
  for await (const entry of readLogs(path, { tail, follow: flags.follow, until: exited })) {
    const out = entry.stream === 'stderr' ? process.stderr : process.stdout;
    const text = flags.timestamps ? `${entry.time} ${entry.log}` : entry.log;
    if (!out.write(text)) await new Promise((resolve) => out.once('drain', resolve));
  }
  if (flags.untilExit && exited) return (await exited)?.exitCode ?? 0;
  return 0;
}
