/**
 * docker's confirmation before a prune: `WARNING! …` and `[y/N]` on a terminal; `-f` skips it.
 * Without a terminal to ask on, a prune without `-f` is refused rather than done unasked.
 */
import { createInterface } from 'node:readline';
import { CliError } from './errors.js';

/** Whether to go on: true with `force` or a `y`; false for anything else typed. */
export async function confirm(warning: string, force: boolean | undefined): Promise<boolean> {
  if (force) return true;
  if (!process.stdin.isTTY)
    throw new CliError(
      `${warning.split('\n')[0]} Refused: stdin is not a terminal to confirm on (use -f)`,
      1,
    );
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  const answer = await new Promise<string>((resolve) =>
    rl.question(`WARNING! ${warning}\nAre you sure you want to continue? [y/N] `, resolve),
  );
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}
