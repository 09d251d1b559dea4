/** What fuse-overlayfs is given: its `-o` options, and the `fuse` mount's data (one place for both uses). */
import { RuntimeError } from '../errors.js';

/** fuse-overlayfs's `-o` value: the layers (top first), and an upper and work dir when writable. */
export function fuseOverlayOptions(layers: {
  lowerdirs: readonly string[];
  upperdir?: string;
  workdir?: string;
}): string {
  const dirs = [...layers.lowerdirs, layers.upperdir ?? '', layers.workdir ?? ''];
  // Its option syntax has no escapes for these.
  const bad = dirs.find((dir) => /[,:]/.test(dir));
  if (bad !== undefined)
    throw new RuntimeError('EINVAL', `fuse-overlayfs cannot take a layer path with "," or ":": ${bad}`);
  const data = [`lowerdir=${layers.lowerdirs.join(':')}`];
  if (layers.upperdir) data.push(`upperdir=${layers.upperdir}`, `workdir=${layers.workdir}`);
  return data.join(',');
}

/**
 * The data of a `fuse` mount on the device at `fd`, owned by the mounter's root. `allow_other`:
 * the container's other users get in; `default_permissions`: the kernel checks modes and owners
 * itself, as overlayfs does (the server, root of box's namespace, would let every request through).
 */
export function fuseMountData(fd: number): string {
  return `fd=${fd},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions`;
}
