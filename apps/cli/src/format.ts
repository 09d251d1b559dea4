/** docker's human durations and simple Go-template formatting. */

/** "5 seconds", "About a minute", "3 hours", as docker's units.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.round(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(minutes / 60);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  const days = Math.round(hours / 24);
  if (days < 14) return `${days} days`;
  if (days < 60) return `${Math.round(days / 7)} weeks`;
  if (days < 730) return `${Math.round(days / 30)} months`;
  return `${Math.round(days / 365)} years`;
}

/** Fills `{{.Field}}` (and `{{json .Field}}`) from an object; unknown fields are an error. */
export function renderTemplate(template: string, data: Record<string, unknown>): string {
  return template
    .replace(/\\t/g, '\t')
    .replace(/\\n/g, '\n')
    .replace(/\{\{\s*(json\s+)?\.(\w+)\s*\}\}/g, (_, json: string | undefined, field: string) => {
      if (!(field in data)) throw new Error(`template: can't evaluate field ${field}`);
      const value = data[field];
      return json ? JSON.stringify(value) : String(value ?? '');
    });
}

/** Columns padded like docker's tables (three spaces between). */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return `${rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}
