/**
 * Go's value printing as docker's templates reach it: fmt's %v, Sprint, Sprintln and Sprintf,
 * strconv's float formatting (correctly rounded, ties to even) and encoding/json.
 *
 * JavaScript values stand for Go values this way: `undefined` is "no value" (an invalid
 * reflect.Value: a missing map key), `null` is nil, a `GoStruct` is one of docker's typed
 * formatter contexts, an object whose values are all strings is a Go map (labels, options) and
 * any other object is a struct (an inspect section such as State), an integral number is an int.
 */

/**
 * A method of a formatter context that takes arguments (`{{.Label "com.example"}}`): its
 * parameters are strings, and it is not part of the context's JSON.
 */
export interface GoMethod {
  params: 'string'[];
  fn: (...args: string[]) => unknown;
}

/**
 * One of docker's formatter contexts: a struct whose fields a template reaches by name. `json`:
 * what encoding/json makes of it when its JSON names are not its field names (a struct with
 * json tags, such as events.Message), in its order; else its fields with sorted keys.
 */
export class GoStruct {
  constructor(
    readonly typeName: string,
    readonly fields: Record<string, unknown>,
    readonly methods: Record<string, GoMethod> = {},
    readonly json?: Record<string, unknown>,
  ) {}
}

export type GoObject = Record<string, unknown>;

export function isObject(value: unknown): value is GoObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof GoStruct);
}

const GO_KIND = Symbol('Go kind');

/**
 * Marks an object as a Go map whatever its values (docker's PortMap, Networks, Volumes…), so
 * that it prints as `map[k:v]` with sorted keys, as docker's typed values do; `goStruct` marks
 * one as a struct although its values are all strings (a PortBinding). The mark is not
 * enumerable: the object is otherwise unchanged.
 */
export function goMap<T extends GoObject>(value: T): T {
  Object.defineProperty(value, GO_KIND, { value: 'map', enumerable: false });
  return value;
}

export function goStruct<T extends GoObject>(value: T): T {
  Object.defineProperty(value, GO_KIND, { value: 'struct', enumerable: false });
  return value;
}

/** An object that stands for a Go map (marked, or every value a string, or empty), not a struct. */
export function isStringMap(value: GoObject): boolean {
  const kind = (value as { [GO_KIND]?: 'map' | 'struct' })[GO_KIND];
  if (kind !== undefined) return kind === 'map';
  for (const key in value) if (typeof value[key] !== 'string') return false;
  return true;
}

/** The Go type docker would name for a value, in error messages and %T. */
export function goTypeName(value: unknown): string {
  if (value === undefined || value === null) return '<nil>';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float64';
  if (typeof value === 'bigint') return 'int64';
  if (value instanceof GoStruct) return value.typeName;
  if (Array.isArray(value)) return value.every((v) => typeof v === 'string') ? '[]string' : '[]interface {}';
  if (isObject(value)) {
    const strings = Object.values(value).every((v) => typeof v === 'string');
    return isStringMap(value) && strings ? 'map[string]string' : 'map[string]interface {}';
  }
  return typeof value;
}

// --- numbers ------------------------------------------------------------------------------

/** A decimal as strconv keeps it: value = 0.d × 10^dp, d without trailing zeros ('' is zero). */
interface Decimal {
  d: string;
  dp: number;
}

/** The exact decimal expansion of a finite, non-negative double. */
function exactDecimal(x: number): Decimal {
  if (x === 0) return { d: '', dp: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exponent = -1074;
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  let digits: string;
  let dp: number;
  if (exponent >= 0) {
    digits = (mantissa << BigInt(exponent)).toString();
    dp = digits.length;
  } else {
    digits = (mantissa * 5n ** BigInt(-exponent)).toString();
    dp = digits.length + exponent;
  }
  return trim({ d: digits, dp });
}

function trim(a: Decimal): Decimal {
  const d = a.d.replace(/0+$/, '');
  return { d, dp: d === '' ? 0 : a.dp };
}

/** strconv's decimal.Round: to nd digits, an exact half rounding to even. */
function round(a: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= a.d.length) return a;
  const halfway = a.d[nd] === '5' && nd + 1 === a.d.length;
  const up = halfway ? nd > 0 && (a.d.charCodeAt(nd - 1) - 48) % 2 === 1 : a.d[nd]! >= '5';
  if (!up) return trim({ d: a.d.slice(0, nd), dp: a.dp });
  for (let i = nd - 1; i >= 0; i--) {
    if (a.d[i] !== '9') return { d: a.d.slice(0, i) + String.fromCharCode(a.d.charCodeAt(i) + 1), dp: a.dp };
  }
  return { d: '1', dp: a.dp + 1 };
}

/** The shortest decimal that reads back as x (JavaScript and Go agree on it). */
function shortestDecimal(x: number): Decimal {
  if (x === 0) return { d: '', dp: 0 };
  const [mantissa, exp] = x.toExponential().split('e') as [string, string];
  return trim({ d: mantissa.replace('.', ''), dp: Number(exp) + 1 });
}

function fmtE(d: Decimal, prec: number, e: string): string {
  let out = d.d[0] ?? '0';
  if (prec > 0) out += `.${d.d.slice(1, prec + 1).padEnd(prec, '0')}`;
  let exp = d.d === '' ? 0 : d.dp - 1;
  const sign = exp < 0 ? '-' : '+';
  exp = Math.abs(exp);
  return `${out}${e}${sign}${exp < 10 ? `0${exp}` : exp}`;
}

function fmtF(d: Decimal, prec: number): string {
  let out = d.dp > 0 ? d.d.slice(0, d.dp).padEnd(d.dp, '0') : '0';
  if (prec > 0) {
    out += '.';
    for (let i = 1; i <= prec; i++) {
      const j = d.dp + i - 1;
      out += j >= 0 && j < d.d.length ? d.d[j] : '0';
    }
  }
  return out;
}

/** strconv.FormatFloat(x, verb, prec, 64); prec -1 is the shortest representation. */
export function formatFloat(x: number, verb: 'e' | 'E' | 'f' | 'F' | 'g' | 'G', prec: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  const neg = x < 0 || Object.is(x, -0) ? '-' : '';
  const shortest = prec < 0;
  let d = shortest ? shortestDecimal(Math.abs(x)) : exactDecimal(Math.abs(x));
  const lower = verb.toLowerCase();
  if (shortest) {
    prec =
      lower === 'e'
        ? Math.max(d.d.length - 1, 0)
        : lower === 'f'
          ? Math.max(d.d.length - d.dp, 0)
          : d.d.length;
  } else if (lower === 'e') {
    d = round(d, prec + 1);
  } else if (lower === 'f') {
    d = round(d, d.dp + prec);
  } else {
    if (prec === 0) prec = 1;
    d = round(d, prec);
  }
  if (lower === 'e') return neg + fmtE(d, prec, verb === 'E' ? 'E' : 'e');
  if (lower === 'f') return neg + fmtF(d, prec);
  let eprec = prec;
  if (eprec > d.d.length && d.d.length >= d.dp) eprec = d.d.length;
  if (shortest) eprec = 6;
  const exp = d.dp - 1;
  if (exp < -4 || exp >= eprec) {
    if (prec > d.d.length) prec = d.d.length;
    return neg + fmtE(d, prec - 1, verb === 'G' ? 'E' : 'e');
  }
  if (prec > d.dp) prec = d.d.length;
  return neg + fmtF(d, Math.max(prec - d.dp, 0));
}

/** A number as %v prints it: an int, or a float64 in %g's shortest form. */
function formatNumber(x: number): string {
  return Number.isInteger(x) && Math.abs(x) < 1e21 ? String(x) : formatFloat(x, 'g', -1);
}

// --- %v, Sprint, Sprintln ---------------------------------------------------------------------

/** A value as fmt's %v prints it (maps with sorted keys, structs as {a b}). */
export function formatValue(value: unknown): string {
  if (value === undefined || value === null) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return `[${value.map(formatValue).join(' ')}]`;
  if (value instanceof GoStruct) return `{${Object.values(value.fields).map(formatValue).join(' ')}}`;
  if (isObject(value)) {
    if (isStringMap(value)) {
      const keys = Object.keys(value).sort(compareStrings);
      return `map[${keys.map((k) => `${k}:${formatValue(value[k])}`).join(' ')}]`;
    }
    return `{${Object.values(value).map(formatValue).join(' ')}}`;
  }
  return String(value);
}

/** Go orders strings by their UTF-8 bytes. */
export function compareStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** fmt.Sprint: a space between operands when neither is a string. */
export function sprint(args: unknown[]): string {
  let out = '';
  let prevString = false;
  args.forEach((arg, i) => {
    const isString = typeof arg === 'string';
    if (i > 0 && !isString && !prevString) out += ' ';
    out += formatValue(arg);
    prevString = isString;
  });
  return out;
}

/** fmt.Sprintln: spaces between all operands, a newline at the end. */
export function sprintln(args: unknown[]): string {
  return `${args.map(formatValue).join(' ')}\n`;
}

// --- Sprintf ----------------------------------------------------------------------------------

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width?: number;
  prec?: number;
}

const runes = (s: string) => [...s].length;

function pad(s: string, spec: Spec, zeroOk = true): string {
  if (spec.width === undefined) return s;
  const n = spec.width - runes(s);
  if (n <= 0) return s;
  if (spec.minus) return s + ' '.repeat(n);
  if (spec.zero && zeroOk) {
    const sign = /^[+\- ]/.test(s) ? s[0]! : '';
    return sign + '0'.repeat(n) + s.slice(sign.length);
  }
  return ' '.repeat(n) + s;
}

/** strconv.Quote. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const r = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (r === 7) out += '\\a';
    else if (r === 8) out += '\\b';
    else if (r === 12) out += '\\f';
    else if (r === 10) out += '\\n';
    else if (r === 13) out += '\\r';
    else if (r === 9) out += '\\t';
    else if (r === 11) out += '\\v';
    else if (r < 0x20 || r === 0x7f) out += `\\x${r.toString(16).padStart(2, '0')}`;
    else if (ch === ' ' || /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch;
    else if (r < 0x10000) out += `\\u${r.toString(16).padStart(4, '0')}`;
    else out += `\\U${r.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

function badVerb(verb: string, arg: unknown): string {
  if (arg === undefined || arg === null) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(arg)}=${formatValue(arg)})`;
}

function formatInteger(x: number, verb: string, spec: Spec): string {
  const neg = x < 0;
  const abs = BigInt(Math.abs(x));
  let digits: string;
  let prefix = '';
  switch (verb) {
    case 'b':
      digits = abs.toString(2);
      if (spec.sharp) prefix = '0b';
      break;
    case 'o':
    case 'O':
      digits = abs.toString(8);
      if (verb === 'O') prefix = '0o';
      else if (spec.sharp && digits !== '0') prefix = '0';
      break;
    case 'x':
      digits = abs.toString(16);
      if (spec.sharp) prefix = '0x';
      break;
    case 'X':
      digits = abs.toString(16).toUpperCase();
      if (spec.sharp) prefix = '0X';
      break;
    case 'c':
      return pad(String.fromCodePoint(x), spec, false);
    case 'q':
      return pad(`'${String.fromCodePoint(x)}'`, spec, false);
    case 'U': {
      const u = `U+${abs.toString(16).toUpperCase().padStart(4, '0')}`;
      return pad(spec.sharp ? `${u} '${String.fromCodePoint(x)}'` : u, spec, false);
    }
    default:
      digits = abs.toString();
  }
  if (spec.prec !== undefined) digits = spec.prec === 0 && abs === 0n ? '' : digits.padStart(spec.prec, '0');
  const sign = neg ? '-' : spec.plus ? '+' : spec.space ? ' ' : '';
  let body = prefix + digits;
  if (spec.zero && !spec.minus && spec.prec === undefined && spec.width !== undefined) {
    body = prefix + digits.padStart(spec.width - sign.length - prefix.length, '0');
  }
  return pad(sign + body, { ...spec, zero: false });
}

function formatFloatVerb(x: number, verb: string, spec: Spec): string {
  const v = verb === 'v' ? 'g' : (verb as 'e' | 'E' | 'f' | 'F' | 'g' | 'G');
  let s = formatFloat(x, v, spec.prec ?? (v === 'e' || v === 'E' || v === 'f' || v === 'F' ? 6 : -1));
  if (spec.plus && !s.startsWith('-')) s = `+${s}`;
  else if (spec.space && !s.startsWith('-')) s = ` ${s}`;
  else if (s.startsWith('+')) s = s.slice(1);
  return pad(s, spec, Number.isFinite(x));
}

function formatString(s: string, verb: string, spec: Spec): string {
  if (spec.prec !== undefined) s = [...s].slice(0, spec.prec).join('');
  if (verb === 'q') return pad(goQuote(s), spec);
  if (verb === 'x' || verb === 'X') {
    const bytes = [...Buffer.from(s)].map((b) => b.toString(16).padStart(2, '0'));
    const hex = (spec.sharp ? bytes.map((b) => `0x${b}`) : bytes).join(spec.space ? ' ' : '');
    return pad(verb === 'X' ? hex.toUpperCase() : hex, spec);
  }
  return pad(s, spec);
}

/** One operand under one verb, as fmt's printArg. */
function formatArg(arg: unknown, verb: string, spec: Spec): string {
  if (verb === 'T') return pad(arg === undefined || arg === null ? '<nil>' : goTypeName(arg), spec);
  if (arg === undefined || arg === null) return verb === 'v' ? pad('<nil>', spec) : badVerb(verb, arg);
  if (typeof arg === 'boolean')
    return verb === 'v' || verb === 't' ? pad(String(arg), spec) : badVerb(verb, arg);
  if (typeof arg === 'number') {
    // Box cannot tell a float64 with an integral value from an int: the float verbs take both.
    if ('eEfFgG'.includes(verb)) return formatFloatVerb(arg, verb, spec);
    if (Number.isInteger(arg) && Math.abs(arg) < 2 ** 63) {
      if ('bcdoOqxXUv'.includes(verb)) return formatInteger(arg, verb === 'v' ? 'd' : verb, spec);
      return badVerb(verb, arg);
    }
    return verb === 'v' ? formatFloatVerb(arg, 'g', spec) : badVerb(verb, arg);
  }
  if (typeof arg === 'string')
    return 'vsqxX'.includes(verb) ? formatString(arg, verb, spec) : badVerb(verb, arg);
  if (Array.isArray(arg)) return `[${arg.map((a) => formatArg(a, verb, spec)).join(' ')}]`;
  if (verb === 'v' || verb === 's') return pad(formatValue(arg), spec);
  return badVerb(verb, arg);
}

/** fmt.Sprintf with Go's flags, width, precision, argument indexes and its %!verb(…) notes. */
export function sprintf(format: string, args: unknown[]): string {
  let out = '';
  let argNum = 0;
  let reordered = false;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct === -1) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const spec: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false };
    for (; i < format.length; i++) {
      const c = format[i];
      if (c === '-') spec.minus = true;
      else if (c === '+') spec.plus = true;
      else if (c === '#') spec.sharp = true;
      else if (c === ' ') spec.space = true;
      else if (c === '0') spec.zero = !spec.minus;
      else break;
    }
    const argIndex = () => {
      const m = /^\[(\d+)\]/.exec(format.slice(i));
      if (!m) return;
      argNum = Number(m[1]) - 1;
      reordered = true;
      i += m[0].length;
    };
    argIndex();
    const number = () => {
      const m = /^\d+/.exec(format.slice(i));
      if (!m) return undefined;
      i += m[0].length;
      return Number(m[0]);
    };
    spec.width = number();
    if (format[i] === '.') {
      i++;
      argIndex();
      spec.prec = number() ?? 0;
    }
    argIndex();
    if (i >= format.length) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argNum >= args.length || argNum < 0) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    out += formatArg(args[argNum++], verb, spec);
  }
  if (!reordered && argNum < args.length) {
    out += `%!(EXTRA ${args
      .slice(argNum)
      .map((a) => (a === undefined || a === null ? '<nil>' : `${goTypeName(a)}=${formatValue(a)}`))
      .join(', ')})`;
  }
  return out;
}

// --- encoding/json ----------------------------------------------------------------------------

function jsonString(s: string, escapeHTML: boolean): string {
  let out = JSON.stringify(s)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  if (escapeHTML) out = out.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
  return out;
}

/**
 * encoding/json: Go maps (string-valued objects, docker's formatter contexts) with sorted keys,
 * structs in their order; `escapeHTML` as json.Marshal (true) or docker's `json` function (false).
 */
export function goJSON(value: unknown, options: { escapeHTML: boolean; indent?: string }, depth = 0): string {
  const { indent } = options;
  const nl = (d: number) => (indent === undefined ? '' : `\n${indent.repeat(d)}`);
  if (value === undefined || value === null) return 'null';
  if (typeof value === 'string') return jsonString(value, options.escapeHTML);
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  // An int64 (nanoseconds) beyond a double's exact integers.
  if (typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const items = value.map((v) => nl(depth + 1) + goJSON(v, options, depth + 1));
    return `[${items.join(',')}${nl(depth)}]`;
  }
  let fields: GoObject;
  let keys: string[];
  if (value instanceof GoStruct && value.json) {
    fields = value.json;
    keys = Object.keys(fields);
  } else if (value instanceof GoStruct) {
    fields = value.fields;
    keys = Object.keys(fields).sort(compareStrings);
  } else if (isObject(value)) {
    fields = value;
    keys = isStringMap(value) ? Object.keys(value).sort(compareStrings) : Object.keys(value);
  } else {
    return JSON.stringify(value) ?? 'null';
  }
  keys = keys.filter((k) => fields[k] !== undefined);
  if (keys.length === 0) return '{}';
  const sep = indent === undefined ? ':' : ': ';
  const items = keys.map(
    (k) =>
      `${nl(depth + 1)}${jsonString(k, options.escapeHTML)}${sep}${goJSON(fields[k], options, depth + 1)}`,
  );
  return `{${items.join(',')}${nl(depth)}}`;
}
