/**
 * `box commit`: the container's writable layer (its overlay upper dir, turned
 * into an OCI layer with `.wh.` whiteouts) becomes a new image on top of its
 * image's layers. `box export`: the container's whole filesystem as a tar.
 */
import { closeSync, createWriteStream, rmSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createCgroupManager } from '@box/cgroups';
import { diffLayer, withOverlay } from '@box/unionfs';
import { applyChanges } from '../change.js';
import { type ContainerState, containerDir, findContainer } from '../containers.js';
import { readSpec } from '../create.js';
import { CliError } from '../errors.js';
import { imageError, imageStore } from '../images.js';
import { isRunning } from '../lifecycle.js';
import { commitPauseMarker, reconcile, takeCommitPauseMarker } from '../recovery.js';
import { isPaused } from './pause.js';

export interface CommitFlags {
  change: string[];
  message?: string;
  author?: string;
  pause?: boolean;
}

/**
 * Runs `fn` with the container frozen (docker commit --pause), so its files hold still. A
 * locked marker says a commit froze it: if this process dies, the next box command thaws it.
 * A container the user paused stays paused.
 */
async function paused<T>(state: ContainerState, running: boolean, fn: () => Promise<T>): Promise<T> {
  if (!running || !state.cgroupsPath || (await isPaused(state.cgroupsPath))) return fn();
  const marker = await takeCommitPauseMarker(state.id);
  // Another commit has it frozen: commit along with it.
  if (marker === null) return fn();
  const cgroup = await createCgroupManager({ path: state.cgroupsPath });
  try {
    await cgroup.freeze();
    try {
      return await fn();
    } finally {
      await cgroup.thaw();
    }
  } finally {
    rmSync(commitPauseMarker(state.id), { force: true });
    closeSync(marker);
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
    const id = await paused(state, running && flags.pause !== false, () =>
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
