/**
 * `box system df [-v] [--format …]`: what images, containers and volumes hold on disk, in
 * docker's summary (TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE) or its sections with -v. Images are
 * counted from the image store (a layer shared by several images once), containers and volumes
 * by the engine.
 */
import type { Container, VolumeUsage } from '@box/runtime';
import { openEngine } from '../engine.js';
import { imageStore } from '../image-store.js';
import { containerSize, formatList, goJSON, humanDuration, humanSize } from '../output/index.js';

export interface DfFlags {
  verbose?: boolean;
  format?: string;
}

export interface ImageUsage {
  id: string;
  repoTags: string[];
  created: string | undefined;
  /** Its layers' bytes. */
  size: number;
  /** Bytes of its layers that other images have too. */
  sharedSize: number;
  /** Containers made from it. */
  containers: number;
}

async function imageUsage(root: string): Promise<{ images: ImageUsage[]; layersSize: number }> {
  const store = await imageStore(root);
  const summaries = store.listImages();
  const layersOf = new Map(summaries.map((image) => [image.id, store.resolve(image.id).layers]));
  const users = new Map<string, number>();
  const sizes = new Map<string, number>();
  for (const layers of layersOf.values())
    for (const layer of new Map(layers.map((l) => [l.chainID, l])).values()) {
      users.set(layer.chainID, (users.get(layer.chainID) ?? 0) + 1);
      sizes.set(layer.chainID, layer.size);
    }
  const images = summaries.map((image) => ({
    id: image.id,
    repoTags: image.repoTags,
    created: image.created,
    size: image.size,
    sharedSize: (layersOf.get(image.id) ?? [])
      .filter((l) => (users.get(l.chainID) ?? 0) > 1)
      .reduce((sum, l) => sum + l.size, 0),
    containers: image.holders.length,
  }));
  return { images, layersSize: [...sizes.values()].reduce((a, b) => a + b, 0) };
}

/** "1.2MB (40%)": docker prints the share only when there is a total to take it of. */
function reclaimable(bytes: number, total: number): string {
  return total > 0 ? `${humanSize(bytes)} (${Math.trunc((bytes * 100) / total)}%)` : humanSize(bytes);
}

const isActive = (c: Container) => c.running || c.status === 'restarting';

const SUMMARY_HEADERS = {
  Type: 'TYPE',
  TotalCount: 'TOTAL',
  Active: 'ACTIVE',
  Size: 'SIZE',
  Reclaimable: 'RECLAIMABLE',
};

export function summaryRows(
  images: ImageUsage[],
  layersSize: number,
  containers: Container[],
  volumes: VolumeUsage[],
) {
  const used = images.filter((i) => i.containers > 0).reduce((sum, i) => sum + i.size - i.sharedSize, 0);
  const containersSize = containers.reduce((sum, c) => sum + (c.sizeRw ?? 0), 0);
  const idleContainers = containers.filter((c) => !isActive(c)).reduce((sum, c) => sum + (c.sizeRw ?? 0), 0);
  const volumesSize = volumes.reduce((sum, v) => sum + v.size, 0);
  const idleVolumes = volumes.filter((v) => v.refCount === 0).reduce((sum, v) => sum + v.size, 0);
  return [
    {
      Type: 'Images',
      TotalCount: String(images.length),
      Active: String(images.filter((i) => i.containers > 0).length),
      Size: humanSize(layersSize),
      Reclaimable: reclaimable(layersSize - used, layersSize),
    },
    {
      Type: 'Containers',
      TotalCount: String(containers.length),
      Active: String(containers.filter(isActive).length),
      Size: humanSize(containersSize),
      Reclaimable: reclaimable(idleContainers, containersSize),
    },
    {
      Type: 'Local Volumes',
      TotalCount: String(volumes.length),
      Active: String(volumes.filter((v) => v.refCount > 0).length),
      Size: humanSize(volumesSize),
      Reclaimable: reclaimable(idleVolumes, volumesSize),
    },
    // box builds no images: an empty build cache, as docker shows one.
    { Type: 'Build Cache', TotalCount: '0', Active: '0', Size: '0B', Reclaimable: '0B' },
  ];
}

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

function imageRow(image: ImageUsage, now: number) {
  // The first tag only, as docker's verbose listing.
  const tag = image.repoTags[0];
  const colon = tag?.lastIndexOf(':') ?? -1;
  return {
    Repository: tag ? tag.slice(0, colon) : '<none>',
    Tag: tag ? tag.slice(colon + 1) : '<none>',
    ID: short(image.id),
    CreatedSince: image.created ? `${humanDuration(now - Date.parse(image.created))} ago` : 'N/A',
    Size: humanSize(image.size, 3),
    SharedSize: humanSize(image.sharedSize, 3),
    UniqueSize: humanSize(image.size - image.sharedSize, 3),
    Containers: String(image.containers),
  };
}

function containerRow(c: Container, imageSize: number, now: number) {
  const command = JSON.stringify(c.command.join(' '));
  const status = c.running ? 'Up' : c.status === 'exited' ? `Exited (${c.exitCode ?? 0})` : 'Created';
  const since = c.running ? c.started : c.finished;
  return {
    ID: c.id.slice(0, 12),
    Image: c.image,
    Command: command.length <= 22 ? command : `${command.slice(0, 19)}…"`,
    LocalVolumes: String((c.volumes ?? []).length + (c.anonymousVolumes ?? []).length),
    Size: containerSize(c.sizeRw ?? 0, (c.sizeRw ?? 0) + imageSize),
    RunningFor: `${humanDuration(now - Date.parse(c.created))} ago`,
    Status:
      status === 'Created' || !since
        ? status
        : c.running
          ? `Up ${humanDuration(now - Date.parse(since))}`
          : `${status} ${humanDuration(now - Date.parse(since))} ago`,
    Names: c.name,
  };
}

const volumeRow = (v: VolumeUsage) => ({ Name: v.Name, Links: String(v.refCount), Size: humanSize(v.size) });

const SECTIONS = {
  images: {
    Repository: 'REPOSITORY',
    Tag: 'TAG',
    ID: 'IMAGE ID',
    CreatedSince: 'CREATED',
    Size: 'SIZE',
    SharedSize: 'SHARED SIZE',
    UniqueSize: 'UNIQUE SIZE',
    Containers: 'CONTAINERS',
  },
  containers: {
    ID: 'CONTAINER ID',
    Image: 'IMAGE',
    Command: 'COMMAND',
    LocalVolumes: 'LOCAL VOLUMES',
    Size: 'SIZE',
    RunningFor: 'CREATED',
    Status: 'STATUS',
    Names: 'NAMES',
  },
  volumes: { Name: 'VOLUME NAME', Links: 'LINKS', Size: 'SIZE' },
  buildCache: {
    ID: 'CACHE ID',
    CacheType: 'CACHE TYPE',
    Size: 'SIZE',
    CreatedSince: 'CREATED',
    LastUsedSince: 'LAST USED',
    UsageCount: 'USAGE',
    Shared: 'SHARED',
  },
};

function section(rows: Record<string, unknown>[], headers: Record<string, string>): string {
  return formatList(rows, { headers, defaultColumns: Object.keys(headers) });
}

export async function df(flags: DfFlags): Promise<number> {
  const engine = openEngine();
  const [{ images, layersSize }, { containers, volumes }] = await Promise.all([
    imageUsage(engine.root),
    engine.diskUsage(),
  ]);
  if (!flags.verbose) {
    process.stdout.write(
      formatList(summaryRows(images, layersSize, containers, volumes), {
        format: flags.format,
        headers: SUMMARY_HEADERS,
        defaultColumns: Object.keys(SUMMARY_HEADERS),
        typeName: '*formatter.diskUsageImagesContext',
      }),
    );
    return 0;
  }
  const now = Date.now();
  const imageSizes = new Map(images.map((i) => [i.id, i.size]));
  const sections = {
    Images: images.map((i) => imageRow(i, now)),
    Containers: containers.map((c) => containerRow(c, c.imageId ? (imageSizes.get(c.imageId) ?? 0) : 0, now)),
    Volumes: volumes.map(volumeRow),
    BuildCache: [],
  };
  // docker's verbose output is its sections' tables, or all of them as one JSON object.
  if (flags.format === 'json') {
    process.stdout.write(`${goJSON(sections, { escapeHTML: false })}\n`);
    return 0;
  }
  process.stdout.write(
    [
      `Images space usage:\n\n${section(sections.Images, SECTIONS.images)}`,
      `Containers space usage:\n\n${section(sections.Containers, SECTIONS.containers)}`,
      `Local Volumes space usage:\n\n${section(sections.Volumes, SECTIONS.volumes)}`,
      `Build cache usage: 0B\n\n${section([], SECTIONS.buildCache)}`,
    ].join('\n'),
  );
  return 0;
}
