import type { Container, VolumeUsage } from '@box/runtime';
import { describe, expect, it } from 'vitest';
import { type ImageUsage, summaryRows } from './df.js';

const image = (size: number, sharedSize: number, containers: number): ImageUsage => ({
  id: `sha256:${size}`,
  repoTags: [],
  created: undefined,
  size,
  sharedSize,
  containers,
});
const container = (sizeRw: number, running: boolean, status = running ? 'running' : 'exited') =>
  ({ sizeRw, running, status }) as Container;
const volume = (size: number, refCount: number) => ({ size, refCount }) as VolumeUsage;

describe('system df summary', () => {
  it("counts as docker: an image in use holds its unique bytes; idle containers' layers and unused volumes", () => {
    // Two images of 3000 and 5000 bytes sharing a 2000-byte layer: 6000 bytes of layers.
    const rows = summaryRows(
      [image(3000, 2000, 1), image(5000, 2000, 0)],
      6000,
      [container(100, true), container(300, false), container(50, false, 'restarting')],
      [volume(10, 0), volume(30, 2)],
    );
    expect(rows).toEqual([
      { Type: 'Images', TotalCount: '2', Active: '1', Size: '6kB', Reclaimable: '5kB (83%)' },
      { Type: 'Containers', TotalCount: '3', Active: '2', Size: '450B', Reclaimable: '300B (66%)' },
      { Type: 'Local Volumes', TotalCount: '2', Active: '1', Size: '40B', Reclaimable: '10B (25%)' },
      { Type: 'Build Cache', TotalCount: '0', Active: '0', Size: '0B', Reclaimable: '0B' },
    ]);
  });

  it('shows no share of nothing', () => {
    const rows = summaryRows([], 0, [], []);
    expect(rows.map((r) => r.Reclaimable)).toEqual(['0B', '0B', '0B', '0B']);
  });
});
