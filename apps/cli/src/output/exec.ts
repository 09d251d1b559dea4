/**
 * Go's text/template execution with docker's functions (json, join, split, title, lower, upper,
 * pad, truncate) beside Go's builtins, and Go's error messages
 * ("template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type …").
 */
import {
  compareStrings,
  GoStruct,
  goJSON,
  goQuote,
  goTypeName,
  isObject,
  isStringMap,
  sprint,
  sprintf,
  sprintln,
} from './gofmt.js';
import {
  type AnyNode,
  type Arg,
  type Command,
  type Node,
  nodeString,
  type Pipe,
  TemplateError,
  type Tree,
} from './parse.js';

/** Parameter types as Go's reflection checks them: `value` is a reflect.Value (takes no value too). */
type Param = 'any' | 'value' | 'string' | 'int' | '[]string';

interface Func {
  params: Param[];
  variadic?: Param;
  fn: (...args: unknown[]) => unknown;
}

/** An error a function returns: "error calling NAME: MESSAGE". */
class FuncError extends Error {}

const NO_FINAL = Symbol('missing');
type Final = unknown;

const BREAK = Symbol('break');
const CONTINUE = Symbol('continue');

function isTrue(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'string' || Array.isArray(value)) return value.length > 0;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'boolean') return value;
  if (value instanceof GoStruct) return true;
  if (isObject(value)) return isStringMap(value) ? Object.keys(value).length > 0 : true;
  return true;
}

type Kind = 'bool' | 'number' | 'string' | 'invalid';
function basicKind(v: unknown): Kind {
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  return 'invalid';
}

function eq(arg1: unknown, ...rest: unknown[]): boolean {
  if (rest.length === 0) throw new FuncError('missing argument for comparison');
  const k1 = basicKind(arg1);
  for (const arg of rest) {
    const k2 = basicKind(arg);
    if (k1 !== k2) {
      if (arg1 !== undefined && arg1 !== null && arg !== undefined && arg !== null) {
        throw new FuncError('incompatible types for comparison');
      }
      if ((arg1 === undefined || arg1 === null) && (arg === undefined || arg === null)) return true;
      continue;
    }
    if (k1 === 'invalid') {
      if (arg1 === undefined || arg1 === null || arg === undefined || arg === null) {
        if ((arg1 ?? null) === (arg ?? null)) return true;
        continue;
      }
      throw new FuncError(`non-comparable type ${sprint([arg])}: ${goTypeName(arg)}`);
    }
    if (arg1 === arg) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 === 'invalid' || k2 === 'invalid') throw new FuncError('invalid type for comparison');
  if (k1 !== k2) throw new FuncError('incompatible types for comparison');
  if (k1 === 'bool') throw new FuncError('invalid type for comparison');
  if (k1 === 'string') return compareStrings(a as string, b as string) < 0;
  return (a as number) < (b as number);
}

function indexArg(index: unknown, cap: number): number {
  if (index === undefined || index === null) throw new FuncError('cannot index slice/array with nil');
  if (typeof index !== 'number' || !Number.isInteger(index)) {
    throw new FuncError(`cannot index slice/array with type ${goTypeName(index)}`);
  }
  if (index < 0 || index > cap) throw new FuncError(`index out of range: ${index}`);
  return index;
}

function index(item: unknown, ...indexes: unknown[]): unknown {
  if (item === undefined) throw new FuncError('index of untyped nil');
  for (const i of indexes) {
    if (item === null) throw new FuncError('index of nil pointer');
    if (typeof item === 'string' || Array.isArray(item)) {
      const sequence = typeof item === 'string' ? Buffer.from(item) : item;
      const x = indexArg(i, sequence.length);
      if (x === sequence.length) throw new FuncError('reflect: slice index out of range');
      item = sequence[x];
    } else if (isObject(item)) {
      if (typeof i !== 'string') {
        throw new FuncError(`value has type ${goTypeName(i)}; should be string`);
      }
      // A missing key gives the map's zero value: "" for a string map, no value otherwise.
      item = i in item ? item[i] : isStringMap(item) ? '' : undefined;
    } else {
      throw new FuncError(`can't index item of type ${goTypeName(item)}`);
    }
  }
  return item;
}

function slice(item: unknown, ...indexes: unknown[]): unknown {
  if (item === undefined || item === null) throw new FuncError('slice of untyped nil');
  if (indexes.length > 3) throw new FuncError(`too many slice indexes: ${indexes.length}`);
  if (typeof item !== 'string' && !Array.isArray(item)) {
    throw new FuncError(`can't slice item of type ${goTypeName(item)}`);
  }
  if (typeof item === 'string' && indexes.length === 3) throw new FuncError('cannot 3-index slice a string');
  const sequence = typeof item === 'string' ? Buffer.from(item) : item;
  const bounds = [0, sequence.length];
  indexes.slice(0, 2).forEach((x, i) => {
    bounds[i] = indexArg(x, sequence.length);
  });
  if (bounds[0]! > bounds[1]!) throw new FuncError(`invalid slice index: ${bounds[0]} > ${bounds[1]}`);
  const part = sequence.slice(bounds[0], bounds[1]);
  return typeof item === 'string' ? (part as Buffer).toString() : part;
}

function length(item: unknown): number {
  if (item === undefined) throw new FuncError('reflect: call of reflect.Value.Type on zero Value');
  if (item === null) throw new FuncError('len of nil pointer');
  if (typeof item === 'string') return Buffer.byteLength(item);
  if (Array.isArray(item)) return item.length;
  if (isObject(item)) return Object.keys(item).length;
  throw new FuncError(`len of type ${goTypeName(item)}`);
}

/** strings.Title: the first letter of each word in upper case. */
function title(s: string): string {
  let prev = ' ';
  let out = '';
  for (const ch of s) {
    const separator =
      prev.codePointAt(0)! < 0x80
        ? !/[A-Za-z0-9_]/.test(prev)
        : /\s/u.test(prev) || !/[\p{L}\p{N}]/u.test(prev);
    out += separator ? ch.toUpperCase() : ch;
    prev = ch;
  }
  return out;
}

function htmlEscape(s: string): string {
  return s.replace(/[\0"'&<>]/g, (c) =>
    c === '\0'
      ? '\uFFFD'
      : c === '"'
        ? '&#34;'
        : c === "'"
          ? '&#39;'
          : c === '&'
            ? '&amp;'
            : c === '<'
              ? '&lt;'
              : '&gt;',
  );
}

function jsEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const r = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (ch === '"') out += '\\"';
    else if ('<>&='.includes(ch)) out += `\\u${r.toString(16).toUpperCase().padStart(4, '0')}`;
    else if (r < 0x20) out += `\\u${r.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}

function urlQuery(s: string): string {
  return [...Buffer.from(s)]
    .map((b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9\-_.~]/.test(c)) return c;
      if (c === ' ') return '+';
      return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

/** One string from the arguments of html, js and urlquery, as evalArgs. */
function evalArgs(args: unknown[]): string {
  return args.length === 1 && typeof args[0] === 'string' ? args[0] : sprint(args);
}

const BUILTINS: Record<string, Func> = {
  and: { params: ['value'], variadic: 'value', fn: () => undefined },
  or: { params: ['value'], variadic: 'value', fn: () => undefined },
  not: { params: ['value'], fn: (v) => !isTrue(v) },
  len: { params: ['value'], fn: length },
  index: { params: ['value'], variadic: 'value', fn: index },
  slice: { params: ['value'], variadic: 'value', fn: slice },
  call: {
    params: ['value'],
    variadic: 'value',
    fn: (f) => {
      throw new FuncError(
        f === undefined || f === null ? 'call of nil' : `non-function of type ${goTypeName(f)}`,
      );
    },
  },
  print: { params: [], variadic: 'any', fn: (...a) => sprint(a) },
  println: { params: [], variadic: 'any', fn: (...a) => sprintln(a) },
  printf: { params: ['string'], variadic: 'any', fn: (f, ...a) => sprintf(f as string, a) },
  html: { params: [], variadic: 'any', fn: (...a) => htmlEscape(evalArgs(a)) },
  js: { params: [], variadic: 'any', fn: (...a) => jsEscape(evalArgs(a)) },
  urlquery: { params: [], variadic: 'any', fn: (...a) => urlQuery(evalArgs(a)) },
  eq: { params: ['value'], variadic: 'value', fn: eq },
  ne: { params: ['value', 'value'], fn: (a, b) => !eq(a, b) },
  lt: { params: ['value', 'value'], fn: lt },
  le: { params: ['value', 'value'], fn: (a, b) => lt(a, b) || eq(a, b) },
  gt: { params: ['value', 'value'], fn: (a, b) => !(lt(a, b) || eq(a, b)) },
  ge: { params: ['value', 'value'], fn: (a, b) => !lt(a, b) },
};

/** docker's templates.basicFunctions. */
const DOCKER: Record<string, Func> = {
  json: { params: ['any'], fn: (v) => goJSON(v, { escapeHTML: false }) },
  split: {
    params: ['string', 'string'],
    fn: (s, sep) => ((sep as string) === '' ? [...(s as string)] : (s as string).split(sep as string)),
  },
  join: {
    params: ['[]string', 'string'],
    fn: (a, sep) => ((a as string[] | null) ?? []).join(sep as string),
  },
  title: { params: ['string'], fn: (s) => title(s as string) },
  lower: { params: ['string'], fn: (s) => (s as string).toLowerCase() },
  upper: { params: ['string'], fn: (s) => (s as string).toUpperCase() },
  pad: {
    params: ['string', 'int', 'int'],
    fn: (s, prefix, suffix) => {
      if (s === '') return s;
      if ((prefix as number) < 0 || (suffix as number) < 0)
        throw new FuncError('strings: negative Repeat count');
      return ' '.repeat(prefix as number) + s + ' '.repeat(suffix as number);
    },
  },
  truncate: {
    params: ['string', 'int'],
    fn: (s, n) => {
      const bytes = Buffer.from(s as string);
      if (bytes.length < (n as number)) return s;
      if ((n as number) < 0) throw new FuncError(`runtime error: slice bounds out of range [:${n}]`);
      return bytes.subarray(0, n as number).toString();
    },
  },
};

/** docker's templates.HeaderFunctions: a table's header keeps the column names as they are. */
const HEADER: Record<string, Func> = {
  json: { params: ['string'], fn: (v) => v },
  split: { params: ['string', 'string'], fn: (v) => v },
  join: { params: ['string', 'string'], fn: (v) => v },
  title: { params: ['string'], fn: (v) => v },
  lower: { params: ['string'], fn: (v) => v },
  upper: { params: ['string'], fn: (v) => v },
  truncate: { params: ['string', 'int'], fn: (v) => v },
};

/** The function names a template may use (parse-time check). */
export const FUNCTION_NAMES: ReadonlySet<string> = new Set([
  ...Object.keys(BUILTINS),
  ...Object.keys(DOCKER),
]);

export interface ExecOptions {
  /**
   * What a missing key of a struct-like object does: 'error' as docker inspect's raw fallback
   * ("map has no entry for key"), 'invalid' as Go's default (prints "<no value>").
   * String-valued objects (Go maps) always give no value; a GoStruct always errors.
   */
  missingKey: 'error' | 'invalid';
  /** Execute with docker's header functions (for a table's header row). */
  header?: boolean;
}

/** Executes a parsed template on data, as template.Execute; throws TemplateError. */
export function execute(tree: Tree, data: unknown, options: ExecOptions): string {
  const state = new State(tree, data, options);
  try {
    state.walk(data, tree.root);
  } catch (error) {
    if (error instanceof TemplateError) (error as TemplateError & { partial?: string }).partial = state.out;
    throw error;
  }
  return state.out;
}

class State {
  out = '';
  private node: AnyNode | undefined;
  private readonly vars: { name: string; value: unknown }[];
  private readonly funcs: Record<string, Func>;

  constructor(
    private readonly tree: Tree,
    data: unknown,
    private readonly options: ExecOptions,
  ) {
    this.vars = [{ name: '$', value: data }];
    this.funcs = options.header ? { ...BUILTINS, ...DOCKER, ...HEADER } : { ...BUILTINS, ...DOCKER };
  }

  private at(node: AnyNode) {
    this.node = node;
  }

  private errorf(message: string): never {
    if (!this.node) throw new TemplateError(`template: : ${message}`);
    const pos = this.node.pos;
    const before = this.tree.text.slice(0, pos);
    const lineStart = before.lastIndexOf('\n') + 1;
    const line = 1 + before.split('\n').length - 1;
    const column = Buffer.byteLength(before.slice(lineStart));
    const location = `:${line}:${column}`;
    throw new TemplateError(`template: ${location}: executing "" at <${nodeString(this.node)}>: ${message}`);
  }

  // --- variables ---

  private varValue(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--)
      if (this.vars[i]!.name === name) return this.vars[i]!.value;
    return this.errorf(`undefined variable: ${name}`);
  }

  private setVar(name: string, value: unknown) {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i]!.name === name) {
        this.vars[i]!.value = value;
        return;
      }
    }
    this.errorf(`undefined variable: ${name}`);
  }

  // --- statements ---

  walk(dot: unknown, list: Node[]) {
    for (const node of list) {
      this.at(node);
      switch (node.type) {
        case 'text':
          this.out += node.text;
          break;
        case 'action': {
          const value = this.evalPipeline(dot, node.pipe);
          if (node.pipe.decl.length === 0) this.printValue(node, value);
          break;
        }
        case 'if':
        case 'with': {
          const mark = this.vars.length;
          const value = this.evalPipeline(dot, node.pipe);
          if (isTrue(value)) this.walk(node.type === 'with' ? value : dot, node.list);
          else if (node.elseList) this.walk(dot, node.elseList);
          this.vars.length = mark;
          break;
        }
        case 'range':
          this.walkRange(dot, node);
          break;
        case 'break':
          throw BREAK;
        case 'continue':
          throw CONTINUE;
      }
    }
  }

  private walkRange(dot: unknown, r: Extract<Node, { list: Node[] }>) {
    this.at(r);
    const mark = this.vars.length;
    const value = this.evalPipeline(dot, r.pipe);
    const inner = this.vars.length;
    const decl = r.pipe.decl;
    const one = (key: unknown, elem: unknown) => {
      if (decl.length > 0) {
        if (r.pipe.isAssign) this.setVar(decl[0]!.name, decl.length > 1 ? key : elem);
        else this.vars[this.vars.length - 1]!.value = elem;
      }
      if (decl.length > 1) {
        if (r.pipe.isAssign) this.setVar(decl[1]!.name, elem);
        else this.vars[this.vars.length - 2]!.value = key;
      }
      try {
        this.walk(elem, r.list);
      } catch (signal) {
        if (signal !== CONTINUE) throw signal;
      } finally {
        this.vars.length = inner;
      }
    };
    let entries: [unknown, unknown][];
    if (Array.isArray(value)) entries = value.map((v, i) => [i, v]);
    else if (isObject(value)) {
      entries = Object.keys(value)
        .sort(compareStrings)
        .map((k) => [k, value[k]]);
    } else if (value === undefined || value === null) entries = [];
    else if (typeof value === 'number' && Number.isInteger(value)) {
      if (decl.length > 1) this.errorf(`can't use ${value} to iterate over more than one variable`);
      entries = Array.from({ length: Math.max(value, 0) }, (_, i) => [i, i]);
    } else {
      this.errorf(`range can't iterate over ${sprint([value])}`);
    }
    try {
      for (const [key, elem] of entries) one(key, elem);
    } catch (signal) {
      if (signal !== BREAK) throw signal;
    }
    if (entries.length === 0 && r.elseList) this.walk(dot, r.elseList);
    this.vars.length = mark;
  }

  private printValue(node: AnyNode, value: unknown) {
    this.at(node);
    this.out += value === undefined ? '<no value>' : sprint([value]);
  }

  // --- expressions ---

  private evalPipeline(dot: unknown, pipe: Pipe): unknown {
    this.at(pipe);
    let value: Final = NO_FINAL;
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value);
    for (const variable of pipe.decl) {
      if (pipe.isAssign) this.setVar(variable.name, value);
      else this.vars.push({ name: variable.name, value });
    }
    return value;
  }

  private notAFunction(args: Arg[], final: Final) {
    if (args.length > 1 || final !== NO_FINAL)
      this.errorf(`can't give argument to non-function ${nodeString(args[0]!)}`);
  }

  private evalCommand(dot: unknown, cmd: Command, final: Final): unknown {
    const first = cmd.args[0]!;
    switch (first.type) {
      case 'field':
        return this.evalFieldNode(dot, first, cmd.args, final);
      case 'chain':
        return this.evalChainNode(dot, first, cmd.args, final);
      case 'identifier':
        return this.evalFunction(dot, first, cmd, cmd.args, final);
      case 'pipe':
        this.notAFunction(cmd.args, final);
        return this.evalPipeline(dot, first.pipe);
      case 'variable':
        return this.evalVariableNode(first, cmd.args, final);
    }
    this.at(first);
    this.notAFunction(cmd.args, final);
    switch (first.type) {
      case 'bool':
        return first.value;
      case 'dot':
        return dot;
      case 'nil':
        return this.errorf('nil is not a command');
      case 'number':
        return first.value;
      case 'string':
        return first.text;
    }
  }

  private evalFieldNode(dot: unknown, field: Extract<Arg, { type: 'field' }>, args: Arg[], final: Final) {
    this.at(field);
    return this.evalFieldChain(dot, field.ident, args, final);
  }

  private evalChainNode(dot: unknown, chain: Extract<Arg, { type: 'chain' }>, args: Arg[], final: Final) {
    this.at(chain);
    if (chain.node.type === 'nil') this.errorf(`indirection through explicit nil in ${nodeString(chain)}`);
    const receiver = this.evalArg(dot, 'value', chain.node);
    return this.evalFieldChain(receiver, chain.field, args, final);
  }

  private evalVariableNode(variable: Extract<Arg, { type: 'variable' }>, args: Arg[], final: Final) {
    this.at(variable);
    const value = this.varValue(variable.ident[0]!);
    if (variable.ident.length === 1) {
      this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(value, variable.ident.slice(1), args, final);
  }

  private evalFieldChain(receiver: unknown, ident: string[], args: Arg[], final: Final) {
    for (let i = 0; i < ident.length - 1; i++) receiver = this.evalField(ident[i]!, [], NO_FINAL, receiver);
    return this.evalField(ident[ident.length - 1]!, args, final, receiver);
  }

  private evalField(name: string, args: Arg[], final: Final, receiver: unknown): unknown {
    if (receiver === undefined) {
      if (this.options.missingKey === 'error') this.errorf(`nil data; no entry for key ${goQuote(name)}`);
      return undefined;
    }
    const hasArgs = args.length > 1 || final !== NO_FINAL;
    if (receiver === null) return this.errorf(`nil pointer evaluating interface {}.${name}`);
    if (receiver instanceof GoStruct) {
      if (Object.hasOwn(receiver.fields, name)) {
        if (hasArgs) this.errorf(`${name} has arguments but cannot be invoked as function`);
        return receiver.fields[name];
      }
      // Own entries only: `constructor`, `toString` and the like are Object's, not methods.
      const method = Object.hasOwn(receiver.methods, name) ? receiver.methods[name] : undefined;
      if (method) return this.evalCall(receiver, method as Func, this.node!, name, args, final);
    } else if (isObject(receiver)) {
      if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
      if (Object.hasOwn(receiver, name)) return receiver[name];
      if (this.options.missingKey === 'error' && !isStringMap(receiver)) {
        this.errorf(`map has no entry for key ${goQuote(name)}`);
      }
      return undefined;
    }
    return this.errorf(`can't evaluate field ${name} in type ${goTypeName(receiver)}`);
  }

  private evalFunction(
    dot: unknown,
    node: Extract<Arg, { type: 'identifier' }>,
    cmd: AnyNode,
    args: Arg[],
    final: Final,
  ) {
    this.at(node);
    const fn = this.funcs[node.name];
    if (!fn) return this.errorf(`${goQuote(node.name)} is not a defined function`);
    return this.evalCall(dot, fn, cmd, node.name, args, final);
  }

  private evalCall(
    dot: unknown,
    fn: Func,
    node: AnyNode,
    name: string,
    allArgs: Arg[],
    final: Final,
  ): unknown {
    const args = allArgs.slice(1);
    const numIn = args.length + (final === NO_FINAL ? 0 : 1);
    const numFixed = fn.params.length;
    if (fn.variadic) {
      if (numIn < numFixed)
        this.errorf(`wrong number of args for ${name}: want at least ${numFixed} got ${args.length}`);
    } else if (numIn !== numFixed) {
      this.errorf(`wrong number of args for ${name}: want ${numFixed} got ${numIn}`);
    }
    if (name === 'and' || name === 'or') {
      let value: unknown;
      for (const arg of args) {
        value = this.evalArg(dot, 'value', arg);
        if (isTrue(value) === (name === 'or')) return value;
      }
      return final === NO_FINAL ? value : final;
    }
    const argv: unknown[] = [];
    let i = 0;
    for (; i < numFixed && i < args.length; i++) argv.push(this.evalArg(dot, fn.params[i]!, args[i]!));
    for (; i < args.length; i++) argv.push(this.evalArg(dot, fn.variadic!, args[i]!));
    if (final !== NO_FINAL) {
      const type = numIn - 1 < numFixed ? fn.params[numIn - 1]! : (fn.variadic ?? fn.params[numFixed - 1]!);
      argv.push(this.validateType(final, type));
    }
    try {
      return fn.fn(...argv);
    } catch (error) {
      if (!(error instanceof FuncError)) throw error;
      this.at(node);
      return this.errorf(`error calling ${name}: ${error.message}`);
    }
  }

  private validateType(value: unknown, type: Param): unknown {
    if (type === 'value') return value;
    if (value === undefined || value === null) {
      if (type === 'any' || type === '[]string') return null;
      return this.errorf(`invalid value; expected ${type}`);
    }
    switch (type) {
      case 'any':
        return value;
      case 'string':
        if (typeof value === 'string') return value;
        break;
      case 'int':
        if (typeof value === 'number' && Number.isInteger(value)) return value;
        break;
      case '[]string':
        if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
        break;
    }
    return this.errorf(`wrong type for value; expected ${type}; got ${goTypeName(value)}`);
  }

  private evalArg(dot: unknown, type: Param, n: Arg): unknown {
    this.at(n);
    switch (n.type) {
      case 'dot':
        return this.validateType(dot, type);
      case 'nil':
        if (type === 'any' || type === 'value' || type === '[]string') return null;
        return this.errorf(`cannot assign nil to ${type}`);
      case 'field':
        return this.validateType(this.evalFieldNode(dot, n, [n], NO_FINAL), type);
      case 'variable':
        return this.validateType(this.evalVariableNode(n, [], NO_FINAL), type);
      case 'pipe':
        return this.validateType(this.evalPipeline(dot, n.pipe), type);
      case 'identifier':
        return this.validateType(this.evalFunction(dot, n, n, [], NO_FINAL), type);
      case 'chain':
        return this.validateType(this.evalChainNode(dot, n, [], NO_FINAL), type);
    }
    switch (type) {
      case 'string':
        if (n.type === 'string') return n.text;
        return this.errorf(`expected string; found ${nodeString(n)}`);
      case 'int':
        if (n.type === 'number' && n.isInt) return n.value;
        return this.errorf(`expected integer; found ${nodeString(n)}`);
      case '[]string':
        return this.errorf(`can't handle ${nodeString(n)} for arg of type []string`);
    }
    switch (n.type) {
      case 'bool':
        return n.value;
      case 'number':
        return n.value;
      case 'string':
        return n.text;
    }
  }
}
