import type { FakeHierarchy } from './tree.js';

const escapeOctal = (path: string) =>
  path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

/** /proc/self/mountinfo text that mounts each fake hierarchy at its directory. */
export function fakeMountinfo(root: string, hierarchies: readonly FakeHierarchy[]): string {
  const lines = ['20 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw'];
  const unified = hierarchies.length === 1 && hierarchies[0]!.root === root;
  if (!unified)
    lines.push(`30 20 0:26 / ${escapeOctal(root)} rw,nosuid,nodev,noexec shared:2 - tmpfs tmpfs rw,mode=755`);
  hierarchies.forEach((h, index) => {
    const id = 31 + index;
    const fsType = h.version === 1 ? 'cgroup' : 'cgroup2';
    const superOptions = h.version === 1 ? `rw,${h.controllers.join(',')}` : 'rw,nsdelegate';
    const parent = unified ? 20 : 30;
    lines.push(
      `${id} ${parent} 0:${id} / ${escapeOctal(h.root)} rw,nosuid,nodev,noexec,relatime shared:${id} - ${fsType} ${fsType} ${superOptions}`,
    );
  });
  return `${lines.join('\n')}\n`;
}
