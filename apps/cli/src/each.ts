/** docker's way with commands on several containers: each one tried, errors printed, exit 1 if any failed. */
export async function eachReference(
  references: readonly string[],
  fn: (reference: string) => Promise<string | undefined>,
): Promise<number> {
  let failed = false;
  for (const reference of references) {
    try {
      const out = await fn(reference);
      if (out !== undefined) process.stdout.write(`${out}\n`);
    } catch (error) {
      failed = true;
      process.stderr.write(`box: ${(error as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
