/**
 * Local images, minimal form: $BOX_ROOT/images/NAME/{rootfs/, config.json}
 * where config.json holds an OCI image config. Replaced by @box/image's store.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CliError } from './errors.js';
import { imagesDir } from './paths.js';

export interface ImageConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
}

export interface LocalImage {
  name: string;
  rootfs: string;
  config: ImageConfig;
}

const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/;

export function findImage(reference: string): LocalImage {
  if (!NAME.test(reference)) throw new CliError(`invalid reference format: "${reference}"`);
  const name = reference.endsWith(':latest') ? reference.slice(0, -':latest'.length) : reference;
  const dir = join(imagesDir(), name.replace(':', '_'));
  const rootfs = join(dir, 'rootfs');
  try {
    if (!statSync(rootfs).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new CliError(`Unable to find image '${name.includes(':') ? name : `${name}:latest`}' locally`);
  }
  let config: ImageConfig = {};
  try {
    const parsed = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { config?: ImageConfig };
    config = parsed.config ?? {};
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CliError(`image ${name}: unreadable config.json: ${(error as Error).message}`);
    }
  }
  return { name, rootfs, config };
}
