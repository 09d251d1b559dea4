/**
 * Go's text/template/parse: the lexer and parser, with Go's error messages
 * ("template: :1: function \"foo\" not defined", "template: :1: unexpected EOF").
 * {{define}}, {{template}} and {{block}} are refused: docker's formats have one template.
 *
 * Written here because no kept JavaScript library is faithful enough: @ctrl/golang-template
 * matches tags by regular expressions (no pipelines, variables, printf or errors; `.` inside
 * `range` is the root); @evertdespiegeleer/go-template runs Go's engine as WebAssembly (async,
 * a 5.3 MB module to load on every command, without docker's functions, output and errors in
 * one string); go-text-template has no range, if or printf; go-text-template-napi is a native
 * Go build.
 */

/** A malformed template or a failed execution, with a message as Go and docker word it. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

// --- lexer ------------------------------------------------------------------------------------

type ItemType =
  | 'error'
  | 'bool'
  | 'char'
  | 'charConstant'
  | 'complex'
  | 'assign'
  | 'declare'
  | 'EOF'
  | 'field'
  | 'identifier'
  | 'leftDelim'
  | 'leftParen'
  | 'number'
  | 'pipe'
  | 'rawString'
  | 'rightDelim'
  | 'rightParen'
  | 'space'
  | 'string'
  | 'text'
  | 'variable'
  // keywords
  | 'block'
  | 'break'
  | 'continue'
  | 'dot'
  | 'define'
  | 'else'
  | 'end'
  | 'if'
  | 'nil'
  | 'range'
  | 'template'
  | 'with';

const KEYWORDS = new Set<ItemType>([
  'block',
  'break',
  'continue',
  'dot',
  'define',
  'else',
  'end',
  'if',
  'nil',
  'range',
  'template',
  'with',
]);

interface Item {
  typ: ItemType;
  pos: number;
  val: string;
  line: number;
}

function itemString(item: Item): string {
  if (item.typ === 'EOF') return 'EOF';
  if (item.typ === 'error') return item.val;
  if (KEYWORDS.has(item.typ)) return `<${item.val}>`;
  const runes = [...item.val];
  if (runes.length > 10) return `${goQuoted(runes.slice(0, 10).join(''))}...`;
  return goQuoted(item.val);
}

function goQuoted(s: string): string {
  return JSON.stringify(s).replace(/\\u00([0-9a-f]{2})/g, '\\x$1');
}

/** %#U: U+007D '}'. */
function codePointName(r: number): string {
  const hex = `U+${r.toString(16).toUpperCase().padStart(4, '0')}`;
  return /[\p{L}\p{M}\p{N}\p{P}\p{S} ]/u.test(String.fromCodePoint(r))
    ? `${hex} '${String.fromCodePoint(r)}'`
    : hex;
}

const EOF = -1;
const isSpace = (r: number) => r === 0x20 || r === 0x09 || r === 0x0d || r === 0x0a;
const isAlphaNumeric = (r: number) =>
  r === 0x5f || (r >= 0 && /[\p{L}\p{Nd}]/u.test(String.fromCodePoint(r)));
const hasLeftTrimMarker = (s: string) => s.length >= 2 && s[0] === '-' && isSpace(s.charCodeAt(1));
const hasRightTrimMarker = (s: string) => s.length >= 2 && isSpace(s.charCodeAt(0)) && s[1] === '-';
const leftTrimLength = (s: string) => s.length - s.replace(/^[ \t\r\n]+/, '').length;
const rightTrimLength = (s: string) => s.length - s.replace(/[ \t\r\n]+$/, '').length;

/** Lexes the whole input (up to the first error item), as Go's lexer would feed the parser. */
function lex(input: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let start = 0;
  let width = 0;
  let parenDepth = 0;
  const lineAt = (p: number) => {
    let line = 1;
    for (let i = input.indexOf('\n'); i !== -1 && i < p; i = input.indexOf('\n', i + 1)) line++;
    return line;
  };
  const item = (typ: ItemType): Item => ({
    typ,
    pos: start,
    val: input.slice(start, pos),
    line: lineAt(start),
  });
  const emit = (typ: ItemType) => {
    items.push(item(typ));
    start = pos;
  };
  const errorf = (message: string) => {
    items.push({ typ: 'error', pos: start, val: message, line: lineAt(start) });
    return null;
  };
  const next = () => {
    if (pos >= input.length) {
      width = 0;
      return EOF;
    }
    const r = input.codePointAt(pos)!;
    width = r > 0xffff ? 2 : 1;
    pos += width;
    return r;
  };
  const backup = () => {
    pos -= width;
  };
  const peek = () => {
    const r = next();
    backup();
    return r;
  };
  const accept = (valid: string) => {
    const r = next();
    if (r !== EOF && valid.includes(String.fromCodePoint(r))) return true;
    backup();
    return false;
  };
  const acceptRun = (valid: string) => {
    for (;;) {
      const r = next();
      if (r === EOF || !valid.includes(String.fromCodePoint(r))) break;
    }
    backup();
  };
  const atRightDelim = (): [boolean, boolean] => {
    if (hasRightTrimMarker(input.slice(pos)) && input.startsWith('}}', pos + 2)) return [true, true];
    return [input.startsWith('}}', pos), false];
  };
  const atTerminator = () => {
    const r = peek();
    if (isSpace(r) || r === EOF) return true;
    if ('.,|:)('.includes(String.fromCodePoint(r))) return true;
    return input.startsWith('}}', pos);
  };
  const scanNumber = () => {
    accept('+-');
    let digits = '0123456789_';
    if (accept('0')) {
      if (accept('xX')) digits = '0123456789abcdefABCDEF_';
      else if (accept('oO')) digits = '01234567_';
      else if (accept('bB')) digits = '01_';
    }
    acceptRun(digits);
    if (accept('.')) acceptRun(digits);
    if (digits.length === 11 && accept('eE')) {
      accept('+-');
      acceptRun('0123456789_');
    }
    if (digits.length === 23 && accept('pP')) {
      accept('+-');
      acceptRun('0123456789_');
    }
    accept('i');
    if (isAlphaNumeric(peek())) {
      next();
      return false;
    }
    return true;
  };

  type State = (() => State) | null;
  const lexText = (): State => {
    const x = input.indexOf('{{', pos);
    if (x === -1) {
      pos = input.length;
      if (pos > start) emit('text');
      emit('EOF');
      return null;
    }
    if (x > pos) {
      pos = x;
      const trimLength = hasLeftTrimMarker(input.slice(x + 2)) ? rightTrimLength(input.slice(start, pos)) : 0;
      pos -= trimLength;
      if (pos > start) items.push(item('text'));
      pos += trimLength;
      start = pos;
    }
    return lexLeftDelim;
  };
  const lexLeftDelim = (): State => {
    pos += 2;
    const afterMarker = hasLeftTrimMarker(input.slice(pos)) ? 2 : 0;
    if (input.startsWith('/*', pos + afterMarker)) {
      pos += afterMarker;
      start = pos;
      return lexComment;
    }
    emit('leftDelim');
    pos += afterMarker;
    start = pos;
    parenDepth = 0;
    return lexInsideAction;
  };
  const lexComment = (): State => {
    pos += 2;
    const x = input.indexOf('*/', pos);
    if (x === -1) return errorf('unclosed comment');
    pos = x + 2;
    const [delim, trimSpace] = atRightDelim();
    if (!delim) return errorf('comment ends before closing delimiter');
    if (trimSpace) pos += 2;
    pos += 2;
    if (trimSpace) pos += leftTrimLength(input.slice(pos));
    start = pos;
    return lexText;
  };
  const lexRightDelim = (): State => {
    const [, trimSpace] = atRightDelim();
    if (trimSpace) {
      pos += 2;
      start = pos;
    }
    pos += 2;
    emit('rightDelim');
    if (trimSpace) {
      pos += leftTrimLength(input.slice(pos));
      start = pos;
    }
    return lexText;
  };
  const lexInsideAction = (): State => {
    const [delim] = atRightDelim();
    if (delim) return parenDepth === 0 ? lexRightDelim : errorf('unclosed left paren');
    const r = next();
    if (r === EOF) return errorf('unclosed action');
    if (isSpace(r)) {
      backup();
      return lexSpace;
    }
    const c = String.fromCodePoint(r);
    switch (c) {
      case '=':
        emit('assign');
        return lexInsideAction;
      case ':':
        if (next() !== 0x3d) return errorf('expected :=');
        emit('declare');
        return lexInsideAction;
      case '|':
        emit('pipe');
        return lexInsideAction;
      case '"':
        return lexQuote;
      case '`':
        return lexRawQuote;
      case '$':
        return lexVariable;
      case "'":
        return lexChar;
      case '(':
        parenDepth++;
        emit('leftParen');
        return lexInsideAction;
      case ')':
        parenDepth--;
        if (parenDepth < 0) return errorf('unexpected right paren');
        emit('rightParen');
        return lexInsideAction;
    }
    if (c === '.' && pos < input.length && !(input[pos]! >= '0' && input[pos]! <= '9')) {
      return () => lexFieldOrVariable('field');
    }
    if (c === '.' || c === '+' || c === '-' || (c >= '0' && c <= '9')) {
      backup();
      return lexNumber;
    }
    if (isAlphaNumeric(r)) {
      backup();
      return lexIdentifier;
    }
    if (r <= 0x7f && r >= 0x20 && r !== 0x7f) {
      emit('char');
      return lexInsideAction;
    }
    return errorf(`unrecognized character in action: ${codePointName(r)}`);
  };
  const lexSpace = (): State => {
    let numSpaces = 0;
    while (isSpace(peek())) {
      next();
      numSpaces++;
    }
    if (hasRightTrimMarker(input.slice(pos - 1)) && input.startsWith('}}', pos + 1)) {
      backup();
      if (numSpaces === 1) return lexRightDelim;
    }
    emit('space');
    return lexInsideAction;
  };
  const lexIdentifier = (): State => {
    for (;;) {
      const r = next();
      if (isAlphaNumeric(r)) continue;
      backup();
      const word = input.slice(start, pos);
      if (!atTerminator()) return errorf(`bad character ${codePointName(r)}`);
      if (KEYWORDS.has(word as ItemType) && word !== 'dot') emit(word as ItemType);
      else if (word === 'true' || word === 'false') emit('bool');
      else emit('identifier');
      return lexInsideAction;
    }
  };
  const lexVariable = (): State => {
    if (atTerminator()) {
      emit('variable');
      return lexInsideAction;
    }
    return lexFieldOrVariable('variable');
  };
  const lexFieldOrVariable = (typ: 'field' | 'variable'): State => {
    if (atTerminator()) {
      emit(typ === 'variable' ? 'variable' : 'dot');
      return lexInsideAction;
    }
    let r: number;
    for (;;) {
      r = next();
      if (!isAlphaNumeric(r)) {
        backup();
        break;
      }
    }
    if (!atTerminator()) return errorf(`bad character ${codePointName(r)}`);
    emit(typ);
    return lexInsideAction;
  };
  const lexChar = (): State => {
    for (;;) {
      let r = next();
      if (r === 0x5c) {
        r = next();
        if (r !== EOF && r !== 0x0a) continue;
      }
      if (r === EOF || r === 0x0a) return errorf('unterminated character constant');
      if (r === 0x27) break;
    }
    emit('charConstant');
    return lexInsideAction;
  };
  const lexNumber = (): State => {
    if (!scanNumber()) return errorf(`bad number syntax: ${goQuoted(input.slice(start, pos))}`);
    const sign = peek();
    if (sign === 0x2b || sign === 0x2d) {
      if (!scanNumber() || input[pos - 1] !== 'i') {
        return errorf(`bad number syntax: ${goQuoted(input.slice(start, pos))}`);
      }
      emit('complex');
      return lexInsideAction;
    }
    emit('number');
    return lexInsideAction;
  };
  const lexQuote = (): State => {
    for (;;) {
      let r = next();
      if (r === 0x5c) {
        r = next();
        if (r !== EOF && r !== 0x0a) continue;
      }
      if (r === EOF || r === 0x0a) return errorf('unterminated quoted string');
      if (r === 0x22) break;
    }
    emit('string');
    return lexInsideAction;
  };
  const lexRawQuote = (): State => {
    for (;;) {
      const r = next();
      if (r === EOF) return errorf('unterminated raw quoted string');
      if (r === 0x60) break;
    }
    emit('rawString');
    return lexInsideAction;
  };

  for (let state: State = lexText; state; ) state = state();
  return items;
}

// --- nodes ------------------------------------------------------------------------------------

export type Arg =
  | { type: 'field'; pos: number; ident: string[] }
  | { type: 'variable'; pos: number; ident: string[] }
  | { type: 'chain'; pos: number; node: Arg; field: string[] }
  | { type: 'identifier'; pos: number; name: string }
  | { type: 'dot'; pos: number }
  | { type: 'nil'; pos: number }
  | { type: 'bool'; pos: number; value: boolean }
  | { type: 'number'; pos: number; text: string; isInt: boolean; isFloat: boolean; value: number }
  | { type: 'string'; pos: number; quoted: string; text: string }
  | { type: 'pipe'; pos: number; pipe: Pipe };

export interface Command {
  type: 'command';
  pos: number;
  args: Arg[];
}

export interface Pipe {
  type: 'pipeline';
  pos: number;
  isAssign: boolean;
  decl: { pos: number; name: string }[];
  cmds: Command[];
}

export type Node =
  | { type: 'text'; pos: number; text: string }
  | { type: 'action'; pos: number; pipe: Pipe }
  | { type: 'if' | 'with' | 'range'; pos: number; pipe: Pipe; list: Node[]; elseList?: Node[] }
  | { type: 'break' | 'continue'; pos: number };

/** Everything that can be the subject of an error: Go's Node.String() and position. */
export type AnyNode = Node | Arg | Command | Pipe;

function pipeString(p: Pipe): string {
  let s = '';
  if (p.decl.length > 0) s = `${p.decl.map((d) => d.name).join(', ')}${p.isAssign ? ' = ' : ' := '}`;
  return s + p.cmds.map(nodeString).join(' | ');
}

function listString(list: Node[]): string {
  return list.map(nodeString).join('');
}

export function nodeString(n: AnyNode): string {
  switch (n.type) {
    case 'field':
      return n.ident.map((i) => `.${i}`).join('');
    case 'variable':
      return n.ident.join('.');
    case 'chain': {
      const base = n.node.type === 'pipe' ? `(${nodeString(n.node)})` : nodeString(n.node);
      return base + n.field.map((f) => `.${f}`).join('');
    }
    case 'identifier':
      return n.name;
    case 'dot':
      return '.';
    case 'nil':
      return 'nil';
    case 'bool':
      return String(n.value);
    case 'number':
      return n.text;
    case 'string':
      return n.quoted;
    case 'pipe':
      return pipeString(n.pipe);
    case 'pipeline':
      return pipeString(n);
    case 'command':
      return n.args.map((a) => (a.type === 'pipe' ? `(${nodeString(a)})` : nodeString(a))).join(' ');
    case 'text':
      return n.text;
    case 'action':
      return `{{${pipeString(n.pipe)}}}`;
    case 'if':
    case 'with':
    case 'range': {
      const elsePart = n.elseList ? `{{else}}${listString(n.elseList)}` : '';
      return `{{${n.type} ${pipeString(n.pipe)}}}${listString(n.list)}${elsePart}{{end}}`;
    }
    case 'break':
    case 'continue':
      return `{{${n.type}}}`;
  }
}

// --- strconv.Unquote --------------------------------------------------------------------------

function unquote(quoted: string): string {
  const q = quoted[0];
  const body = quoted.slice(1, -1);
  if (q === '`') return body.replace(/\r/g, '');
  let out = '';
  for (let i = 0; i < body.length; ) {
    const [value, next] = unquoteChar(body, i, q!);
    out += value;
    i = next;
  }
  return out;
}

/** One (possibly escaped) character of a quoted Go string or rune literal. */
function unquoteChar(s: string, i: number, quote: string): [string, number] {
  const c = s[i]!;
  if (c === quote && (quote === "'" || quote === '"')) throw new SyntaxError('invalid syntax');
  if (c !== '\\') {
    const r = s.codePointAt(i)!;
    return [String.fromCodePoint(r), i + (r > 0xffff ? 2 : 1)];
  }
  const e = s[i + 1];
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
  };
  if (e !== undefined && e in simple) return [simple[e]!, i + 2];
  if (e === quote) return [e, i + 2];
  const hex = (n: number) => {
    const digits = s.slice(i + 2, i + 2 + n);
    if (digits.length !== n || !/^[0-9a-fA-F]+$/.test(digits)) throw new SyntaxError('invalid syntax');
    return Number.parseInt(digits, 16);
  };
  if (e === 'x') return [String.fromCharCode(hex(2)), i + 4];
  if (e === 'u') return [String.fromCodePoint(hex(4)), i + 6];
  if (e === 'U') {
    const r = hex(8);
    if (r > 0x10ffff) throw new SyntaxError('invalid syntax');
    return [String.fromCodePoint(r), i + 10];
  }
  if (e !== undefined && e >= '0' && e <= '7') {
    const digits = s.slice(i + 1, i + 4);
    if (!/^[0-7]{3}$/.test(digits) || Number.parseInt(digits, 8) > 255)
      throw new SyntaxError('invalid syntax');
    return [String.fromCharCode(Number.parseInt(digits, 8)), i + 4];
  }
  throw new SyntaxError('invalid syntax');
}

// --- parser -----------------------------------------------------------------------------------

export interface Tree {
  text: string;
  root: Node[];
}

interface Control {
  type: 'end' | 'else';
  pos: number;
}

/** Parses a template as template.New("").Funcs(funcs).Parse(text) does; throws TemplateError. */
export function parse(text: string, funcs: ReadonlySet<string>): Tree {
  const items = lex(text);
  let index = 0;
  let line = 1;
  let actionLine = 0;
  let rangeDepth = 0;
  const vars: string[] = ['$'];

  const errorf = (message: string): never => {
    throw new TemplateError(`template: :${line}: ${message}`);
  };
  const next = () => {
    const item = items[Math.min(index, items.length - 1)]!;
    index++;
    line = item.line;
    return item;
  };
  const backup = () => {
    index--;
  };
  const peek = () => {
    const item = next();
    backup();
    return item;
  };
  const nextNonSpace = () => {
    let item: Item;
    do item = next();
    while (item.typ === 'space');
    return item;
  };
  const peekNonSpace = () => {
    const item = nextNonSpace();
    backup();
    return item;
  };
  const unexpected = (item: Item, context: string): never => {
    if (item.typ === 'error') {
      let extra = '';
      if (actionLine !== 0 && actionLine !== item.line) {
        extra = ` in action started at :${actionLine}`;
        if (item.val.endsWith(' action')) extra = extra.slice(' in action'.length);
      }
      return errorf(`${item.val}${extra}`);
    }
    return errorf(`unexpected ${itemString(item)} in ${context}`);
  };
  const expect = (typ: ItemType, context: string) => {
    const item = nextNonSpace();
    if (item.typ !== typ) unexpected(item, context);
    return item;
  };

  const itemList = (): [Node[], Control] => {
    const list: Node[] = [];
    while (peekNonSpace().typ !== 'EOF') {
      const n = textOrAction();
      if (n.type === 'end' || n.type === 'else') return [list, n as Control];
      list.push(n as Node);
    }
    return errorf('unexpected EOF');
  };

  const textOrAction = (): Node | Control => {
    const item = nextNonSpace();
    if (item.typ === 'text') return { type: 'text', pos: item.pos, text: item.val };
    if (item.typ === 'leftDelim') {
      actionLine = item.line;
      try {
        return action();
      } finally {
        actionLine = 0;
      }
    }
    return unexpected(item, 'input');
  };

  const action = (): Node | Control => {
    const item = nextNonSpace();
    switch (item.typ) {
      case 'block':
      case 'define':
      case 'template':
        return errorf(`{{${item.val}}} is not supported in box's --format`);
      case 'break':
      case 'continue': {
        const token = nextNonSpace();
        if (token.typ !== 'rightDelim') unexpected(token, `{{${item.typ}}}`);
        if (rangeDepth === 0) errorf(`{{${item.typ}}} outside {{range}}`);
        return { type: item.typ, pos: item.pos };
      }
      case 'else': {
        const p = peekNonSpace();
        if (p.typ === 'if' || p.typ === 'with') return { type: 'else', pos: p.pos };
        return { type: 'else', pos: expect('rightDelim', 'else').pos };
      }
      case 'end':
        return { type: 'end', pos: expect('rightDelim', 'end').pos };
      case 'if':
      case 'range':
      case 'with':
        return control(item.typ);
    }
    backup();
    const token = peek();
    return { type: 'action', pos: token.pos, pipe: pipeline('command', 'rightDelim') };
  };

  const control = (context: 'if' | 'range' | 'with'): Node => {
    const mark = vars.length;
    try {
      const pipe = pipeline(context, 'rightDelim');
      if (context === 'range') rangeDepth++;
      const [list, next1] = itemList();
      if (context === 'range') rangeDepth--;
      let elseList: Node[] | undefined;
      if (next1.type === 'else') {
        if ((context === 'if' && peek().typ === 'if') || (context === 'with' && peek().typ === 'with')) {
          next();
          elseList = [control(context)];
        } else {
          const [list2, next2] = itemList();
          if (next2.type !== 'end') errorf(`expected end; found {{${next2.type}}}`);
          elseList = list2;
        }
      }
      return { type: context, pos: pipe.pos, pipe, list, elseList };
    } finally {
      vars.length = mark;
    }
  };

  const pipeline = (context: string, end: ItemType): Pipe => {
    const pipe: Pipe = { type: 'pipeline', pos: peekNonSpace().pos, isAssign: false, decl: [], cmds: [] };
    for (;;) {
      const v = peekNonSpace();
      if (v.typ !== 'variable') break;
      const at = index;
      next();
      const following = peekNonSpace();
      if (following.typ === 'assign' || following.typ === 'declare') {
        pipe.isAssign = following.typ === 'assign';
        nextNonSpace();
        pipe.decl.push({ pos: v.pos, name: v.val });
        vars.push(v.val);
        break;
      }
      if (following.typ === 'char' && following.val === ',') {
        nextNonSpace();
        pipe.decl.push({ pos: v.pos, name: v.val });
        vars.push(v.val);
        if (context === 'range' && pipe.decl.length < 2) {
          const p = peekNonSpace().typ;
          if (p === 'variable' || p === 'rightDelim' || p === 'rightParen') continue;
          errorf('range can only initialize variables');
        }
        errorf(`too many declarations in ${context}`);
      }
      index = at;
      break;
    }
    for (;;) {
      const item = nextNonSpace();
      if (item.typ === end) {
        if (pipe.cmds.length === 0) errorf(`missing value for ${context}`);
        pipe.cmds.slice(1).forEach((c, i) => {
          if (['bool', 'dot', 'nil', 'number', 'string'].includes(c.args[0]!.type)) {
            errorf(`non executable command in pipeline stage ${i + 2}`);
          }
        });
        return pipe;
      }
      switch (item.typ) {
        case 'bool':
        case 'charConstant':
        case 'complex':
        case 'dot':
        case 'field':
        case 'identifier':
        case 'number':
        case 'nil':
        case 'rawString':
        case 'string':
        case 'variable':
        case 'leftParen':
          backup();
          pipe.cmds.push(command());
          break;
        default:
          unexpected(item, context);
      }
    }
  };

  const command = (): Command => {
    const cmd: Command = { type: 'command', pos: peekNonSpace().pos, args: [] };
    for (;;) {
      peekNonSpace();
      const arg = operand();
      if (arg) cmd.args.push(arg);
      const item = next();
      if (item.typ === 'space') continue;
      if (item.typ === 'rightDelim' || item.typ === 'rightParen') backup();
      else if (item.typ !== 'pipe') unexpected(item, 'operand');
      break;
    }
    if (cmd.args.length === 0) errorf('empty command');
    return cmd;
  };

  const operand = (): Arg | null => {
    const node = term();
    if (!node || peek().typ !== 'field') return node;
    const pos = peek().pos;
    const fields: string[] = [];
    while (peek().typ === 'field') fields.push(next().val.slice(1));
    switch (node.type) {
      case 'field':
        return { type: 'field', pos, ident: [...node.ident, ...fields] };
      case 'variable':
        return { type: 'variable', pos, ident: [...node.ident, ...fields] };
      case 'bool':
      case 'string':
      case 'number':
      case 'nil':
      case 'dot':
        return errorf(`unexpected . after term ${goQuoted(nodeString(node))}`);
      default:
        return { type: 'chain', pos, node, field: fields };
    }
  };

  const term = (): Arg | null => {
    const item = nextNonSpace();
    switch (item.typ) {
      case 'identifier':
        if (!funcs.has(item.val)) errorf(`function ${goQuoted(item.val)} not defined`);
        return { type: 'identifier', pos: item.pos, name: item.val };
      case 'dot':
        return { type: 'dot', pos: item.pos };
      case 'nil':
        return { type: 'nil', pos: item.pos };
      case 'variable': {
        const ident = item.val.split('.');
        if (!vars.includes(ident[0]!)) errorf(`undefined variable ${goQuoted(ident[0]!)}`);
        return { type: 'variable', pos: item.pos, ident };
      }
      case 'field':
        return { type: 'field', pos: item.pos, ident: [item.val.slice(1)] };
      case 'bool':
        return { type: 'bool', pos: item.pos, value: item.val === 'true' };
      case 'charConstant':
      case 'complex':
      case 'number':
        return number(item);
      case 'leftParen': {
        const pipe = pipeline('parenthesized pipeline', 'rightParen');
        return { type: 'pipe', pos: pipe.pos, pipe };
      }
      case 'string':
      case 'rawString':
        try {
          return { type: 'string', pos: item.pos, quoted: item.val, text: unquote(item.val) };
        } catch {
          return errorf('invalid syntax');
        }
    }
    backup();
    return null;
  };

  const number = (item: Item): Arg => {
    const base = { type: 'number' as const, pos: item.pos, text: item.val };
    if (item.typ === 'complex') return errorf(`complex numbers are not supported: ${item.val}`);
    if (item.typ === 'charConstant') {
      let value: string;
      let rest: number;
      try {
        [value, rest] = unquoteChar(item.val.slice(1), 0, "'");
      } catch {
        return errorf('invalid syntax');
      }
      if (item.val.slice(1 + rest) !== "'") errorf(`malformed character constant: ${item.val}`);
      return { ...base, isInt: true, isFloat: true, value: value.codePointAt(0)! };
    }
    const text = item.val;
    const intMatch = /^[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]*|[1-9][0-9_]*)$/.exec(text);
    if (intMatch && !/__|_$|^[+-]?_/.test(text)) {
      const neg = text.startsWith('-');
      let digits = text.replace(/^[+-]/, '').replace(/_/g, '');
      if (/^0[0-7]+$/.test(digits)) digits = `0o${digits.slice(1)}`;
      const big = BigInt(digits) * (neg ? -1n : 1n);
      if (big > 2n ** 63n - 1n || big < -(2n ** 63n)) errorf(`integer overflow: ${text}`);
      return { ...base, isInt: true, isFloat: true, value: Number(big) };
    }
    const f = /^[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d[\d_]*)?$/.test(text)
      ? Number(text.replace(/_/g, ''))
      : Number.NaN;
    if (Number.isNaN(f)) return errorf(`illegal number syntax: ${goQuoted(text)}`);
    if (!/[.eEpP]/.test(text)) errorf(`integer overflow: ${text}`);
    return { ...base, isInt: Number.isInteger(f) && Math.abs(f) < 2 ** 63, isFloat: true, value: f };
  };

  const root: Node[] = [];
  while (peek().typ !== 'EOF') {
    const n = textOrAction();
    if (n.type === 'end' || n.type === 'else') errorf(`unexpected {{${n.type}}}`);
    root.push(n as Node);
  }
  return { text, root };
}
