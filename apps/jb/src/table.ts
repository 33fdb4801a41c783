// The original jb's tables: `+---+` borders, a rule under the header and under
// every row, each cell padded to its column's width (at least the original's 13).
//
//   +---------------+---------------+
//   | ID            | Command       |
//   +---------------+---------------+
//   | 123456        | ls -lah /     |
//   +---------------+---------------+

/** The original jb pads every column to at least this many characters. */
export const MIN_CELL_WIDTH = 13;

/** Control characters would break the grid; show them escaped instead. */
function printable(cell: string): string {
  return cell.replace(/\p{Cc}/gu, (c) => {
    const named: Record<string, string> = { "\n": "\\n", "\t": "\\t", "\r": "\\r" };
    return named[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}

/** Length in code points, so that "é" or "…" count as one. */
function width(text: string): number {
  return [...text].length;
}

/** The table as lines of text, each ending in a newline. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [headers, ...rows].map((row) => headers.map((_, column) => printable(row[column] ?? "")));
  const widths = headers.map((_, column) =>
    Math.max(MIN_CELL_WIDTH, ...cells.map((row) => width(row[column] as string))),
  );
  const rule = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+\n`;
  const line = (row: string[]) =>
    `|${row.map((cell, column) => ` ${cell}${" ".repeat((widths[column] as number) - width(cell))} `).join("|")}|\n`;
  const [header, ...body] = cells as [string[], ...string[][]];
  return rule + line(header) + rule + body.map((row) => line(row) + rule).join("");
}
