/**
 * The CLI's output: lists (`ps`, `images`, `stats`, `volume ls`) and inspect documents through
 * docker's --format rules (Go templates, `table`, `json`), tables padded as docker's tabwriter,
 * and docker's sizes and durations.
 */
import { execute, FUNCTION_NAMES } from './exec.js';
import { GoStruct, goJSON } from './gofmt.js';
import { type Arg, type Node, nodeString, type Pipe, parse, TemplateError, type Tree } from './parse.js';
import { tabwrite } from './tabwriter.js';

export { GoStruct, goJSON, sprintf } from './gofmt.js';
export { TemplateError } from './parse.js';
export { table, tabwrite } from './tabwriter.js';
export { bytesSize, containerSize, humanDuration, humanSize } from './units.js';

/** Parses a Go template with docker's functions; a malformed one throws TemplateError (Go's words). */
export function parseTemplate(text: string): Tree {
  return parse(text, FUNCTION_NAMES);
}

/**
 * Executes a template on one value. `missingKey` as Go's option: 'error' for a key a struct-like
 * object lacks (docker inspect), 'invalid' to print "<no value>" (Go's default).
 */
export function renderTemplate(
  tree: Tree,
  data: unknown,
  missingKey: 'error' | 'invalid' = 'invalid',
): string {
  return execute(tree, data, { missingKey });
}

function parsingError(error: unknown): never {
  if (error instanceof TemplateError) throw new TemplateError(`template parsing error: ${error.message}`);
  throw error;
}

export interface ListOptions {
  /**
   * --format as given: absent, '' or 'table' for the default table; 'json' for one JSON object a
   * line; 'table TEMPLATE' for a header row and rows through the tabwriter; else a template per row.
   */
  format?: string;
  /** docker's column header for each field of a row ({ ID: 'CONTAINER ID', … }). */
  headers: Record<string, string>;
  /** The fields of the default table, in order. */
  defaultColumns: string[];
  /** The Go type docker names when a field is unknown (its formatter context). */
  typeName?: string;
  /** Methods with arguments each row has (`Label`), known to a template even without rows. */
  methods?: string[];
}

/**
 * Formats rows as docker's formatter.Context does: `\t` and `\n` in the format are a tab and a
 * newline, each row is the template's output and a newline, a table gets its header from the
 * same template run on the headers, and an unknown field or a malformed template throws
 * TemplateError ("template parsing error: template: :1:2: executing …"). Unknown fields are
 * refused even when there are no rows.
 */
export function formatList(rows: (Record<string, unknown> | GoStruct)[], options: ListOptions): string {
  let format = options.format ?? '';
  if (format === '' || format === 'table') {
    format = `table ${options.defaultColumns.map((c) => `{{.${c}}}`).join('\t')}`;
  }
  const isTable = format.startsWith('table');
  let text = isTable ? format.slice('table'.length) : format === 'json' ? '{{json .}}' : format;
  text = text.replace(/^ +| +$/g, '').replace(/\\([tn])/g, (_, c: string) => (c === 't' ? '\t' : '\n'));

  const typeName = options.typeName ?? 'struct';
  let tree: Tree;
  try {
    tree = parseTemplate(text);
    if (rows.length === 0)
      checkFields(tree, new Set([...Object.keys(options.headers), ...(options.methods ?? [])]), typeName);
  } catch (error) {
    parsingError(error);
  }
  let body = '';
  for (const row of rows) {
    try {
      const data = row instanceof GoStruct ? row : new GoStruct(typeName, row);
      body += `${execute(tree, data, { missingKey: 'invalid' })}\n`;
    } catch (error) {
      parsingError(error);
    }
  }
  if (!isTable) return body;
  let header: string;
  try {
    header = execute(tree, options.headers, { missingKey: 'invalid', header: true });
  } catch (error) {
    // docker ignores a failing header and keeps what it wrote.
    header = (error as { partial?: string }).partial ?? '';
  }
  return tabwrite(`${header}\n${body}`);
}

/**
 * Formats inspect documents as docker's inspect does: without a format an indented JSON array
 * (json.MarshalIndent, "[]" when empty); 'json' a compact one; else the template once per item,
 * each followed by a newline (an empty line when there is nothing), where a key the document
 * lacks is an error ("map has no entry for key") and `\t` is not translated.
 */
export function formatEach(items: unknown[], format?: string): string {
  if (format === undefined || format === '')
    return `${goJSON(items, { escapeHTML: true, indent: '    ' })}\n`;
  if (format === 'json') return `${goJSON(items, { escapeHTML: true })}\n`;
  let tree: Tree;
  try {
    tree = parseTemplate(format);
  } catch (error) {
    parsingError(error);
  }
  let out = '';
  for (const item of items) {
    try {
      out += `${execute(tree, item, { missingKey: 'error' })}\n`;
    } catch (error) {
      parsingError(error);
    }
  }
  return out === '' ? '\n' : out;
}

/**
 * Refuses a field the rows do not have, without rows to run on: every `.Field` evaluated on the
 * row itself (outside `range` and `with`) and every `$.Field` must name a known field.
 */
function checkFields(tree: Tree, fields: Set<string>, typeName: string) {
  const fail = (node: Arg, name: string): never => {
    const before = tree.text.slice(0, node.pos);
    const line = before.split('\n').length;
    const column = Buffer.byteLength(before.slice(before.lastIndexOf('\n') + 1));
    throw new TemplateError(
      `template: :${line}:${column}: executing "" at <${nodeString(node)}>: can't evaluate field ${name} in type ${typeName}`,
    );
  };
  const checkArg = (arg: Arg, root: boolean) => {
    if (arg.type === 'field' && root && !fields.has(arg.ident[0]!)) fail(arg, arg.ident[0]!);
    if (
      arg.type === 'variable' &&
      arg.ident[0] === '$' &&
      arg.ident.length > 1 &&
      !fields.has(arg.ident[1]!)
    ) {
      fail(arg, arg.ident[1]!);
    }
    if (arg.type === 'pipe') checkPipe(arg.pipe, root);
    if (arg.type === 'chain') checkArg(arg.node, root);
  };
  const checkPipe = (pipe: Pipe, root: boolean) => {
    for (const cmd of pipe.cmds) for (const arg of cmd.args) checkArg(arg, root);
  };
  const checkList = (list: Node[], root: boolean) => {
    for (const node of list) {
      if (node.type === 'action') checkPipe(node.pipe, root);
      if (node.type === 'if' || node.type === 'with' || node.type === 'range') {
        checkPipe(node.pipe, root);
        checkList(node.list, root && node.type === 'if');
        if (node.elseList) checkList(node.elseList, root);
      }
    }
  };
  checkList(tree.root, true);
}
