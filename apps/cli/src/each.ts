import { exitStatusOf } from './errors.js';

/**
 * docker's way with commands on several containers: each one tried, errors printed one line
 * each. The exit status is the highest of the failures' (errors.ts): 1 for an unknown
 * container, 125 for an operation the container's state refuses.
 */
export async function eachReference(
  references: readonly string[],
  fn: (reference: string) => Promise<string | undefined>,
): Promise<number> {
  let status = 0;
  for (const reference of references) {
    try {
      const out = await fn(reference);
      if (out !== undefined) process.stdout.write(`${out}\n`);
    } catch (error) {
      status = Math.max(status, exitStatusOf(error));
      process.stderr.write(`box: ${(error as Error).message}\n`);
    }
  }
  return status;
}
