/** Image commands: images, rmi, tag, image inspect, image prune, import, save, load. */
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  familiarString,
  type ImageStore,
  type ImageSummary,
  importRootfsTar,
  loadArchive,
  parseReference,
  saveArchive,
  saveArchiveTo,
} from '@box/image';
import { applyChanges } from '../change.js';
import { confirm } from '../confirm.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { matchLabels, parseFilters, pathMatch } from '../filters.js';
import { imageError, imageStore as openStore } from '../image-store.js';
import { formatEach, formatList, humanDuration, humanSize } from '../output/index.js';
import { imageValue } from '../output/inspect.js';
import { parseTimestamp } from '../timestamps.js';

const imageStore = () => openStore(openEngine().root);

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

/** docker's column headers for the fields of an `images` row. */
const IMAGE_HEADERS = {
  ID: 'IMAGE ID',
  Digest: 'DIGEST',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
};

/**
 * docker images --filter: which images (and which of their tags, for `reference`) to list.
 * `before` and `since` name an image, whose creation time bounds the others'; `until` is a time
 * (docker's forms: `10m`, a date, Unix seconds), images created before it.
 */
function imageFilter(store: ImageStore, values: readonly string[] | undefined) {
  const filters = parseFilters(values, ['dangling', 'label', 'reference', 'before', 'since', 'until']);
  const dangling = filters.get('dangling');
  let onlyDangling: boolean | undefined;
  if (dangling) {
    // As docker's daemon: any "true" wins, else every value must be "false".
    if (dangling.includes('true')) onlyDangling = true;
    else if (dangling.every((v) => v === 'false')) onlyDangling = false;
    else throw new CliError(`invalid filter 'dangling=[${dangling.join(' ')}]'`);
  }
  // The last image named counts, as docker's WalkValues leaves it.
  const createdOf = (key: string) => {
    const ref = filters.get(key)?.at(-1);
    if (ref === undefined) return undefined;
    try {
      return Date.parse(store.inspectImage(ref).Created ?? '');
    } catch (error) {
      throw imageError(error);
    }
  };
  const before = createdOf('before');
  const since = createdOf('since');
  const untilValue = filters.get('until')?.at(-1);
  const until = untilValue === undefined ? undefined : Number(parseTimestamp(untilValue) / 1_000_000n);
  const labels = filters.get('label');
  const references = filters.get('reference');
  return {
    image: (image: ImageSummary) => {
      const created = Date.parse(image.created ?? '');
      return (
        (onlyDangling === undefined || (image.repoTags.length === 0) === onlyDangling) &&
        (labels === undefined || matchLabels(image.labels, labels)) &&
        (before === undefined || created < before) &&
        (since === undefined || created > since) &&
        (until === undefined || created < until)
      );
    },
    byReference: references !== undefined,
    /** docker's reference filter: path.Match on `name:tag`, or on `name` alone. */
    tag: (tag: string) =>
      references === undefined ||
      references.some(
        (pattern) => pathMatch(pattern, tag) || pathMatch(pattern, tag.slice(0, tag.lastIndexOf(':'))),
      ),
  };
}

export async function images(
  flags: {
    quiet?: boolean;
    format?: string;
    noTrunc?: boolean;
    digests?: boolean;
    all?: boolean;
    filter?: string[];
  },
  repository?: string,
): Promise<number> {
  const store = await imageStore();
  const keep = imageFilter(store, flags.filter);
  const now = Date.now();
  // docker's `images REPOSITORY[:TAG]`: the rows of that repository (and tag) only.
  const slash = repository?.lastIndexOf('/') ?? -1;
  const colon = repository?.indexOf(':', slash + 1) ?? -1;
  const wantedRepo =
    repository === undefined ? undefined : colon === -1 ? repository : repository.slice(0, colon);
  const wantedTag = repository !== undefined && colon !== -1 ? repository.slice(colon + 1) : undefined;
  const rows = store.listImages().flatMap((image) => {
    if (!keep.image(image)) return [];
    // With a reference filter, only the tags that match (an untagged image has none).
    const matching = image.repoTags.filter(keep.tag);
    if (matching.length === 0 && (image.repoTags.length > 0 || keep.byReference)) return [];
    const tags = matching.length > 0 ? matching : ['<none>:<none>'];
    return tags.flatMap((tag) => {
      const colon = tag.lastIndexOf(':');
      const repo = tag.slice(0, colon);
      if (
        wantedRepo !== undefined &&
        (repo !== wantedRepo || (wantedTag !== undefined && tag.slice(colon + 1) !== wantedTag))
      )
        return [];
      const digest =
        image.repoDigests.find((d) => d.startsWith(`${repo}@`))?.slice(repo.length + 1) ?? '<none>';
      return {
        ID: flags.noTrunc ? image.id : short(image.id),
        Repository: repo,
        Tag: tag.slice(colon + 1),
        Digest: digest,
        CreatedSince: image.created ? `${humanDuration(now - Date.parse(image.created))} ago` : 'N/A',
        CreatedAt: image.created ?? '',
        Size: humanSize(image.size, 3),
        Containers: image.holders.length,
      };
    });
  });
  if (flags.quiet) {
    process.stdout.write([...new Set(rows.map((r) => r.ID))].map((id) => `${id}\n`).join(''));
  } else {
    process.stdout.write(
      formatList(rows, {
        format: flags.format,
        headers: IMAGE_HEADERS,
        defaultColumns: flags.digests
          ? ['Repository', 'Tag', 'Digest', 'ID', 'CreatedSince', 'Size']
          : ['Repository', 'Tag', 'ID', 'CreatedSince', 'Size'],
        typeName: '*formatter.imageContext',
      }),
    );
  }
  return 0;
}

export async function rmi(references: string[], flags: { force?: boolean }): Promise<number> {
  // Containers whose owner died release their images first.
  await openEngine().reconcile();
  const store = await imageStore();
  let failed = false;
  for (const reference of references) {
    try {
      const result = await store.removeImage(reference, { force: flags.force });
      for (const tag of result.untagged) process.stdout.write(`Untagged: ${tag}\n`);
      for (const id of result.deleted) process.stdout.write(`Deleted: ${id}\n`);
    } catch (error) {
      failed = true;
      const e = imageError(error, 1);
      process.stderr.write(`box: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

export async function tag(source: string, target: string): Promise<number> {
  try {
    await (await imageStore()).tag(source, target);
  } catch (error) {
    throw imageError(error);
  }
  return 0;
}

export async function imageInspect(references: string[], flags: { format?: string }): Promise<number> {
  const store = await imageStore();
  const found: unknown[] = [];
  let failed = false;
  for (const reference of references) {
    try {
      found.push(imageValue(store.inspectImage(reference)));
    } catch (error) {
      failed = true;
      process.stderr.write(`box: ${(imageError(error, 1) as Error).message}\n`);
    }
  }
  process.stdout.write(formatEach(found, flags.format));
  return failed ? 1 : 0;
}

export async function imagePrune(flags: { all?: boolean; force?: boolean }): Promise<number> {
  const warning = flags.all
    ? 'This will remove all images without at least one container associated to them.'
    : 'This will remove all dangling images.';
  if (!(await confirm(warning, flags.force))) return 0;
  // Containers whose owner died release their images first.
  await openEngine().reconcile();
  const result = await (await imageStore()).prune({ all: flags.all });
  process.stdout.write(
    `Deleted Images:\n${[...result.untagged.map((t) => `untagged: ${t}`), ...result.deleted.map((d) => `deleted: ${d}`)].map((l) => `${l}\n`).join('')}`,
  );
  return 0;
}

/** `box import FILE|- [REPOSITORY[:TAG]]`: a filesystem tar (the book's busybox.tar) as an image. */
export async function importImage(
  file: string,
  reference: string | undefined,
  flags: { change: string[]; message?: string },
): Promise<number> {
  if (reference !== undefined) {
    try {
      parseReference(reference);
    } catch (error) {
      throw imageError(error);
    }
  }
  const config = applyChanges({}, flags.change);
  let source: Readable = process.stdin;
  if (file !== '-') {
    const stream = createReadStream(file);
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (error: Error) => reject(new CliError(`cannot read ${file}: ${error.message}`)));
    });
    source = stream;
  }
  try {
    const id = await importRootfsTar(await imageStore(), source, reference, {
      config,
      comment: flags.message,
    });
    process.stdout.write(`${id}\n`);
  } catch (error) {
    throw imageError(error);
  }
  return 0;
}

export async function save(
  references: string[],
  flags: { output?: string; format?: string },
): Promise<number> {
  const format = flags.format ?? 'docker-archive';
  if (!['docker-archive', 'oci-archive', 'oci-dir'].includes(format)) {
    throw new CliError(`unknown --format "${format}": use docker-archive, oci-archive or oci-dir`);
  }
  try {
    if (flags.output) {
      await saveArchive(await imageStore(), references, flags.output, { format: format as 'docker-archive' });
      return 0;
    }
    // No -o: the archive goes to stdout, as docker's, never to a terminal.
    if (process.stdout.isTTY)
      throw new CliError('cowardly refusing to save to a terminal. Use the -o flag or redirect', 1);
    if (format === 'oci-dir') throw new CliError('--format oci-dir needs -o DIR');
    await saveArchiveTo(await imageStore(), references, process.stdout, { format: format as 'oci-archive' });
  } catch (error) {
    throw imageError(error);
  }
  return 0;
}

export async function load(flags: { input?: string; repository?: string }): Promise<number> {
  if (!flags.input) return loadFromStdin(flags);
  try {
    const loaded = await loadArchive(await imageStore(), flags.input, { repository: flags.repository });
    for (const image of loaded) {
      if (image.references.length === 0) process.stdout.write(`Loaded image ID: ${image.id}\n`);
      for (const ref of image.references)
        process.stdout.write(`Loaded image: ${familiarString(parseReference(ref))}\n`);
    }
  } catch (error) {
    throw imageError(error);
  }
  return 0;
}

/** `box load < FILE`: stdin copied to the store's staging area (root's only), loaded from there. */
async function loadFromStdin(flags: { repository?: string }): Promise<number> {
  if (process.stdin.isTTY) throw new CliError('requested load from stdin, but stdin is empty', 1);
  const store = await imageStore();
  const temp = store.tempPath('stdin');
  try {
    await pipeline(process.stdin, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
    if (statSync(temp).size === 0) throw new CliError('requested load from stdin, but stdin is empty', 1);
    return await load({ input: temp, repository: flags.repository });
  } finally {
    rmSync(temp, { force: true });
  }
}

/** docker's column headers for `history`. */
const HISTORY_HEADERS = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  Size: 'SIZE',
  Comment: 'COMMENT',
};

/**
 * `box history IMAGE`: the config's history, newest first, as docker shows it. An entry that
 * made a layer (not `empty_layer`) has that layer's size; the top entry carries the image ID,
 * the others `<missing>` (box keeps no parent images), as docker does for pulled images.
 */
export async function history(
  reference: string,
  flags: { quiet?: boolean; format?: string; noTrunc?: boolean; human?: boolean },
): Promise<number> {
  const store = await imageStore();
  let resolved: ReturnType<typeof store.resolve>;
  try {
    resolved = store.resolve(reference);
  } catch (error) {
    throw imageError(error, 1);
  }
  const entries = resolved.config.history ?? [];
  const layers = [...resolved.layers];
  const now = Date.now();
  const human = flags.human !== false;
  const rows = entries
    .map((entry) => {
      const size = entry.empty_layer ? 0 : (layers.shift()?.size ?? 0);
      const createdBy = entry.created_by ?? '';
      return {
        ID: '<missing>',
        CreatedSince: entry.created
          ? human
            ? `${humanDuration(now - Date.parse(entry.created))} ago`
            : entry.created
          : 'N/A',
        CreatedAt: entry.created ?? '',
        CreatedBy: flags.noTrunc || createdBy.length <= 45 ? createdBy : `${createdBy.slice(0, 44)}…`,
        Size: human ? humanSize(size, 3) : String(size),
        Comment: entry.comment ?? '',
      };
    })
    .reverse();
  if (rows[0]) rows[0].ID = flags.noTrunc ? resolved.id : short(resolved.id);
  if (flags.quiet) {
    process.stdout.write(rows.map((r) => `${r.ID}\n`).join(''));
    return 0;
  }
  process.stdout.write(
    formatList(rows, {
      format: flags.format,
      headers: HISTORY_HEADERS,
      defaultColumns: ['ID', 'CreatedSince', 'CreatedBy', 'Size', 'Comment'],
      typeName: '*formatter.historyContext',
    }),
  );
  return 0;
}
