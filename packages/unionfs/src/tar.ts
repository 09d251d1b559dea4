/**
 * A minimal tar header writer (POSIX ustar + pax extended headers), writing straight into the
 * caller's buffer. tar-stream's writer was not used for layers because it clamps uids and gids above
 * 0o777777 (user-namespace ids are larger), and writes pax values as UTF-8 text, which corrupts
 * binary xattrs such as `security.capability`; the tests read every archive back with tar-stream
 * and GNU tar.
 */

export type TarEntryType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo';

const TYPEFLAG: Record<TarEntryType, number> = {
  file: 0x30,
  link: 0x31,
  symlink: 0x32,
  'character-device': 0x33,
  'block-device': 0x34,
  directory: 0x35,
  fifo: 0x36,
};

export interface TarHeader {
  /** Path inside the archive, without a leading `./` or `/`; a directory's trailing `/` is added. */
  name: string;
  type: TarEntryType;
  /** Permission bits with setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (files only). */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, stored as pax `SCHILY.xattr.<name>` records (binary-safe). */
  xattrs?: ReadonlyArray<readonly [string, Buffer]>;
}

export const BLOCK = 512;
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

/** Writes value as zero-padded octal digits and a NUL in `width` bytes (the value must fit). */
function writeOctal(buf: Buffer, offset: number, width: number, value: number): void {
  let v = value;
  buf[offset + width - 1] = 0;
  for (let i = offset + width - 2; i >= offset; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
}

/** Splits a long ASCII name into ustar's prefix (≤155) and name (≤100), or undefined. */
function splitName(name: string): [prefix: string, name: string] | undefined {
  if (name.length <= 100) return ['', name];
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    if (i > 155) break;
    if (name.length - i - 1 <= 100 && i > 0) return [name.slice(0, i), name.slice(i + 1)];
  }
  return undefined;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.byteLength(key) + value.length + 3; // ' ' '=' '\n'
  const digits = String(body).length;
  let len = body + digits;
  if (String(len).length > digits) len = body + String(len).length; // the length counts its own digits
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'utf8'), value, Buffer.from('\n')]);
}

/** The constant part of every ustar block: zeros, the checksum's spaces and the magic. */
const TEMPLATE = (() => {
  const t = Buffer.alloc(BLOCK);
  t.fill(0x20, 148, 156);
  t.write('ustar\u000000', 257, 8, 'latin1');
  return t;
})();

function ustarBlock(
  buf: Buffer,
  off: number,
  h: TarHeader,
  name: string,
  prefix: string,
  typeflag: number,
): void {
  TEMPLATE.copy(buf, off);
  buf.write(name, off, 100, 'latin1');
  writeOctal(buf, off + 100, 8, h.mode & 0o7777);
  writeOctal(buf, off + 108, 8, h.uid > MAX_OCTAL_7 ? 0 : h.uid);
  writeOctal(buf, off + 116, 8, h.gid > MAX_OCTAL_7 ? 0 : h.gid);
  writeOctal(buf, off + 124, 12, h.size > MAX_OCTAL_11 ? 0 : h.size);
  writeOctal(buf, off + 136, 12, h.mtime < 0 || h.mtime > MAX_OCTAL_11 ? 0 : h.mtime);
  buf[off + 156] = typeflag;
  if (h.linkname && isAscii(h.linkname)) buf.write(h.linkname, off + 157, 100, 'latin1');
  writeOctal(buf, off + 329, 8, h.devmajor ?? 0);
  writeOctal(buf, off + 337, 8, h.devminor ?? 0);
  if (prefix) buf.write(prefix, off + 345, 155, 'latin1');
  let sum = 0;
  for (let i = off; i < off + BLOCK; i++) sum += buf[i]!;
  writeOctal(buf, off + 148, 7, sum);
  buf[off + 155] = 0x20;
}

/** Where header bytes go: returns a buffer and the offset at which `length` bytes may be written. */
export type Reserve = (length: number) => [Buffer, number];

function asciiFallback(name: string): string {
  // What a reader that ignores pax headers sees instead of a non-ASCII or overlong name.
  return name.replace(/[^\x20-\x7e]/g, '_').slice(-100);
}

/**
 * Writes one entry's header through `reserve`: a pax extended header first when needed (long or
 * non-ASCII names, large ids, sizes or times, xattrs), then the 512-byte ustar block.
 */
export function encodeHeader(h: TarHeader, reserve: Reserve): void {
  const fullName = h.type === 'directory' ? `${h.name}/` : h.name;
  const records: Buffer[] = [];
  let prefix = '';
  let name = fullName;
  const split = isAscii(fullName) ? splitName(fullName) : undefined;
  if (split) [prefix, name] = split;
  else {
    records.push(paxRecord('path', Buffer.from(fullName, 'utf8')));
    name = asciiFallback(fullName);
  }
  if (h.linkname !== undefined && (h.linkname.length > 100 || !isAscii(h.linkname))) {
    records.push(paxRecord('linkpath', Buffer.from(h.linkname, 'utf8')));
  }
  if (h.uid > MAX_OCTAL_7) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_OCTAL_7) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (h.size > MAX_OCTAL_11) records.push(paxRecord('size', Buffer.from(String(h.size))));
  if (h.mtime < 0 || h.mtime > MAX_OCTAL_11) records.push(paxRecord('mtime', Buffer.from(String(h.mtime))));
  for (const [key, value] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${key}`, value));

  if (records.length > 0) {
    const body = Buffer.concat(records);
    const padded = Math.ceil(body.length / BLOCK) * BLOCK;
    const [buf, off] = reserve(BLOCK + padded);
    const paxName = `PaxHeaders/${asciiFallback(fullName.replace(/\/$/, '')).slice(-80)}`;
    const mtime = Math.max(0, Math.min(h.mtime, MAX_OCTAL_11));
    const paxHeader: TarHeader = {
      name: paxName,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: body.length,
      mtime,
    };
    ustarBlock(buf, off, paxHeader, paxName, '', 0x78); // 'x': pax extended header for the next entry
    body.copy(buf, off + BLOCK);
    buf.fill(0, off + BLOCK + body.length, off + BLOCK + padded);
  }
  const [buf, off] = reserve(BLOCK);
  ustarBlock(buf, off, h, name, prefix, TYPEFLAG[h.type]);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
