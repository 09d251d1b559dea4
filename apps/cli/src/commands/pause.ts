/** `box pause`, `box unpause` (the cgroup freezer) and `box update` (new limits for running containers). */
import { eachReference } from '../each.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { parseResourceFlags, type ResourceFlags } from '../resources.js';

export function pause(references: string[]): Promise<number> {
  const engine = openEngine();
  return eachReference(references, async (reference) => {
    await engine.pause(reference);
    return reference;
  });
}

export function unpause(references: string[]): Promise<number> {
  const engine = openEngine();
  return eachReference(references, async (reference) => {
    await engine.unpause(reference);
    return reference;
  });
}

export function update(references: string[], flags: ResourceFlags): Promise<number> {
  const resources = parseResourceFlags(flags);
  if (Object.keys(resources).length === 0)
    throw new CliError('you must provide one or more flags when using this command');
  const engine = openEngine();
  return eachReference(references, async (reference) => {
    await engine.update(reference, resources);
    return reference;
  });
}
