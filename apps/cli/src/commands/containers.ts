/** The container lifecycle commands: create, start, stop, kill, rm, restart, wait, rename, system prune. */
import { confirm } from '../confirm.js';
import { type CreateFlags, createOptions } from '../create-flags.js';
import { eachReference } from '../each.js';
import { openEngine } from '../engine.js';
import { CliError, isRuntimeError } from '../errors.js';
import { parseSignal } from '../signals.js';

/** stop -t: without it, the container's own stop timeout. */
function parseTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds < 0) throw new CliError(`invalid --time "${value}"`);
  return seconds;
}

export async function create(image: string, command: string[], flags: CreateFlags): Promise<number> {
  const options = createOptions(image, command, flags);
  await (await import('./registry.js')).pullForContainer(image, flags.pull, flags.platform);
  const container = await openEngine().create(options);
  process.stdout.write(`${container.id}\n`);
  return 0;
}

export async function start(
  references: string[],
  flags: { attach?: boolean; interactive?: boolean; detachKeys?: string },
): Promise<number> {
  if ((flags.attach || flags.interactive) && references.length > 1)
    throw new CliError('you cannot start and attach multiple containers at once');
  if (flags.attach || flags.interactive) {
    // docker's start -a / -ai: attached from its first byte (through the service), our input
    // with -i, the detach keys leaving it running.
    const { parseDetachKeys } = await import('@box/runtime');
    if (flags.detachKeys !== undefined) parseDetachKeys(flags.detachKeys);
    const engine = openEngine();
    const container = await engine.inspect(references[0]!);
    const { attachTo } = await import('./attach.js');
    return attachTo(engine, container, {
      stdin: flags.interactive ?? false,
      detachKeys: flags.detachKeys,
      sigProxy: true,
    });
  }
  const engine = openEngine();
  return eachReference(references, async (reference) => {
    await engine.start(reference);
    return reference;
  });
}

export function stop(references: string[], flags: { time?: string }): Promise<number> {
  const timeout = parseTime(flags.time);
  const engine = openEngine();
  return eachReference(references, async (reference) => {
    await engine.stop(reference, { timeout });
    return reference;
  });
}

export function kill(references: string[], flags: { signal?: string }): Promise<number> {
  const signal = parseSignal(flags.signal ?? 'KILL');
  const engine = openEngine();
  return eachReference(references, async (reference) => {
    await engine.kill(reference, signal);
    return reference;
  });
}

export async function rm(
  references: string[],
  flags: { force?: boolean; volumes?: boolean },
): Promise<number> {
  const engine = openEngine();
  // All of them killed first, so that their owners record their ends side by side.
  if (flags.force) await engine.killForRemoval(references);
  return eachReference(references, async (reference) => {
    try {
      await engine.remove(reference, { force: flags.force, volumes: flags.volumes });
    } catch (error) {
      // docker rm of a running container: exit 1, as any failed removal.
      if (isRuntimeError(error, 'ESTATE')) throw new CliError(error.message, 1);
      throw error;
    }
    return reference;
  });
}

export function restart(references: string[], flags: { time?: string }): Promise<number> {
  const timeout = parseTime(flags.time);
  const engine = openEngine();
  return eachReference(references, async (reference) => {
    await engine.restart(reference, { timeout });
    return reference;
  });
}

export function wait(references: string[]): Promise<number> {
  const engine = openEngine();
  return eachReference(references, async (reference) => String(await engine.wait(reference)));
}

export async function rename(reference: string, newName: string): Promise<number> {
  await openEngine().rename(reference, newName);
  return 0;
}

/** docker system prune (containers part): removes every stopped container. */
export async function prune(flags: { force?: boolean } = {}): Promise<number> {
  if (!(await confirm('This will remove:\n  - all stopped containers', flags.force))) return 0;
  const removed = await openEngine().prune();
  process.stdout.write(
    `Deleted Containers:\n${removed.map((id) => `${id}\n`).join('')}\nTotal: ${removed.length}\n`,
  );
  return 0;
}
