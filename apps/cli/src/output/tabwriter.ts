/** Go's text/tabwriter with the settings docker's tables use. */

export interface TabwriterOptions {
  /** Minimal cell width, padding included: docker's tables 10, `docker top` 20. */
  minWidth?: number;
  /** Spaces added to the widest cell of a column: 3 in docker. */
  padding?: number;
}

interface Cell {
  text: string;
  width: number;
}

/**
 * Aligns tab-terminated cells into columns as tabwriter.NewWriter(w, minWidth, 1, padding, ' ', 0):
 * a column is a run of consecutive lines that have a cell in it, as wide as its widest cell plus
 * the padding (at least minWidth); the text after a line's last tab is not part of a column.
 */
export function tabwrite(text: string, options: TabwriterOptions = {}): string {
  const minWidth = options.minWidth ?? 10;
  const padding = options.padding ?? 3;
  const lines: Cell[][] = text
    .split('\n')
    .map((line) => line.split('\t').map((cell) => ({ text: cell, width: [...cell].length })));
  const widths: number[] = [];
  let out = '';

  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const line = lines[i]!;
      line.forEach((cell, j) => {
        out += cell.text;
        if (j < widths.length && j < line.length - 1) out += ' '.repeat(Math.max(widths[j]! - cell.width, 0));
      });
      if (i + 1 < lines.length) out += '\n';
    }
  };

  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let current = line0; current < line1; current++) {
      if (column >= lines[current]!.length - 1) continue;
      // A column block begins: the lines before it are complete.
      writeLines(line0, current);
      line0 = current;
      let width = minWidth;
      for (; current < line1; current++) {
        const line = lines[current]!;
        if (column >= line.length - 1) break;
        width = Math.max(width, line[column]!.width + padding);
      }
      widths.push(width);
      format(line0, current);
      widths.pop();
      line0 = current;
    }
    writeLines(line0, line1);
  };

  format(0, lines.length);
  return out;
}

/** Rows of cells as one of docker's tables (the first row is the header). */
export function table(rows: string[][], options?: TabwriterOptions): string {
  if (rows.length === 0) return '';
  return tabwrite(`${rows.map((row) => row.join('\t')).join('\n')}\n`, options);
}
