/**
 * `box commit`: the container's writable layer (its overlay upper dir, turned
 * into an OCI layer with `.wh.` whiteouts) becomes a new image on top of its
 * image's layers. `box export`: the container's whole filesystem as a tar.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createCgroupManager } from '@box/cgroups';
import { diffLayer, withOverlay } from '@box/unionfs';
import { applyChanges } from '../change.js';
import { containerDir, findContainer } from '../containers.js';
import { readSpec } from '../create.js';
import { CliError } from '../errors.js';
import { imageError, imageStore } from '../images.js';
import { isRunning } from '../lifecycle.js';
import { reconcile } from '../recovery.js';

export interface CommitFlags {
  change: string[];
  message?: string;
  author?: string;
  pause?: boolean;
}

/** Runs `fn` with the container frozen (docker commit --pause), so its files hold still. */
async function paused<T>(
  cgroupsPath: string | undefined,
  running: boolean,
  fn: () => Promise<T>,
): Promise<T> {
  if (!running || !cgroupsPath) return fn();
  const cgroup = await createCgroupManager({ path: cgroupsPath });
  await cgroup.freeze();
  try {
    return await fn();
  } finally {
    await cgroup.thaw();
  }
}

export async function commit(
  reference: string,
  target: string | undefined,
  flags: CommitFlags,
): Promise<number> {
  await reconcile();
  const state = findContainer(reference);
  if (!state.imageId) throw new CliError(`container ${reference} has no image to commit on`);
  const store = await imageStore();
  const spec = readSpec(containerDir(state.id));
  const base = store.resolve(state.imageId).config.config ?? {};
  // The container's own settings become the new image's defaults, as in docker.
  const entrypoint = base.Entrypoint ?? [];
  const config = applyChanges(
    {
      ...base,
      Env: spec.process?.env ?? base.Env,
      WorkingDir: spec.process?.cwd ?? base.WorkingDir,
      Cmd: entrypoint.length > 0 ? state.command.slice(entrypoint.length) : state.command,
    },
    flags.change,
  );
  const running = isRunning(state);
  try {
    const id = await paused(state.cgroupsPath, running && flags.pause !== false, () =>
      store.createImage({
        layer: diffLayer(state.overlay.upperdir),
        parent: state.imageId,
        reference: target,
        config,
        comment: flags.message,
        author: flags.author,
        createdBy: `box commit ${state.name}`,
      }),
    );
    process.stdout.write(`${id}\n`);
  } catch (error) {
    throw imageError(error);
  }
  return 0;
}

export async function exportContainer(reference: string, flags: { output?: string }): Promise<number> {
  await reconcile();
  if (!flags.output && process.stdout.isTTY) {
    throw new CliError('cowardly refusing to write a tar archive to a terminal: use -o FILE or a redirect');
  }
  const state = findContainer(reference);
  const { upperdir, lowerdirs, layersRoot } = state.overlay;
  // A read-only overlay of the container's layer over its image's: its files, without its volumes.
  await withOverlay({ lowerdirs: [upperdir, ...lowerdirs], readonly: true, layersRoot }, async (merged) => {
    const out = flags.output ? createWriteStream(flags.output, { flags: 'wx' }) : process.stdout;
    await pipeline(diffLayer(merged), out);
  });
  return 0;
}
