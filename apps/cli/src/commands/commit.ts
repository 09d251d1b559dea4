/**
 * `box commit`: the container's writable layer (its overlay upper dir, turned
 * into an OCI layer with `.wh.` whiteouts) becomes a new image on top of its
 * image's layers. `box export`: the container's whole filesystem as a tar.
 */
import { createWriteStream } from 'node:fs';
import { applyChanges } from '../change.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';

export interface CommitFlags {
  change: string[];
  message?: string;
  author?: string;
  pause?: boolean;
}

export async function commit(
  reference: string,
  target: string | undefined,
  flags: CommitFlags,
): Promise<number> {
  const id = await openEngine().commit(reference, {
    reference: target,
    message: flags.message,
    author: flags.author,
    pause: flags.pause !== false,
    changes: (config) => applyChanges(config, flags.change),
  });
  process.stdout.write(`${id}\n`);
  return 0;
}

export async function exportContainer(reference: string, flags: { output?: string }): Promise<number> {
  if (!flags.output && process.stdout.isTTY) {
    throw new CliError('cowardly refusing to write a tar archive to a terminal: use -o FILE or a redirect');
  }
  // 0600 as docker's (its temporary file renamed): the container's files keep their owners and
  // modes inside the tar, but the tar itself would let any local user read a 0600 file of root's.
  const out = flags.output ? createWriteStream(flags.output, { flags: 'wx', mode: 0o600 }) : process.stdout;
  await openEngine().export(reference, out);
  return 0;
}
