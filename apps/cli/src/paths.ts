import { join } from 'node:path';

/** box's state directory: BOX_ROOT, or /var/lib/box. */
export function boxRoot(): string {
  return process.env.BOX_ROOT || '/var/lib/box';
}

export const imagesDir = (): string => join(boxRoot(), 'images');
export const containersDir = (): string => join(boxRoot(), 'containers');
export const namesDir = (): string => join(boxRoot(), 'names');
