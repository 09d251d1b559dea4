/** Sizes and durations as docker prints them (github.com/docker/go-units). */
import { formatFloat } from './gofmt.js';

/** "Less than a second", "About a minute", "3 hours", "2 weeks": units.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

function scaled(size: number, base: number, names: string[], precision: number): string {
  let i = 0;
  while (size >= base && i < names.length - 1) {
    size /= base;
    i++;
  }
  return `${formatFloat(size, 'g', precision)}${names[i]}`;
}

/**
 * Decimal units with `precision` significant digits (`%.*g`): units.HumanSize (4: "2.746MB") or,
 * as `docker images` and `ps -s` print sizes, units.HumanSizeWithPrecision(size, 3) ("1.23MB").
 */
export function humanSize(bytes: number, precision = 4): string {
  return scaled(bytes, 1000, DECIMAL, precision);
}

/** Binary units, 4 significant digits: units.BytesSize, as `docker stats` ("1.516MiB", "64MiB"). */
export function bytesSize(bytes: number): string {
  return scaled(bytes, 1024, BINARY, 4);
}

/**
 * docker's container SIZE (`ps -s`, `system df -v`): the writable layer, and with the image's
 * layers "(virtual …)", 3 significant digits.
 */
export function containerSize(sizeRw: number, sizeRootFs: number): string {
  const rw = humanSize(sizeRw, 3);
  return sizeRootFs > 0 ? `${rw} (virtual ${humanSize(sizeRootFs, 3)})` : rw;
}
