/** A process's environment from several lists: a later entry replaces an earlier one of its name (docker's and runc's rule). */
export function mergeEnv(...lists: (readonly string[])[]): string[] {
  const byName = new Map<string, string>();
  for (const list of lists) for (const entry of list) byName.set(entry.slice(0, entry.indexOf('=')), entry);
  return [...byName.values()];
}
