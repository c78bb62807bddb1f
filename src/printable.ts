/**
 * The one escaping function for everything hotplugd prints for people (the
 * terminal log format, status, monitor, why, match, error lines). A leaf
 * module: it imports nothing, so every output path can use it.
 */

/**
 * Characters that could act on a terminal or fake a line instead of being
 * read: C0 controls (newline, ESC, ...), DEL, C1 controls (U+0080–U+009F,
 * among them CSI U+009B), the line and paragraph separators U+2028/U+2029
 * and the bidirectional marks, embeddings, overrides and isolates (U+061C,
 * U+200E/U+200F, U+202A–U+202E, U+2066–U+2069) that reorder what follows —
 * and the backslash, so that an escape in the output always means one.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

function escape(c: string): string {
  if (c === '\\') return '\\\\';
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
}

/**
 * Text safe for one line on a terminal or in the journal: `\` becomes `\\`,
 * C0, DEL and C1 controls become `\xNN`, line separators and bidi controls
 * `\u{NNNN}`; everything else (printable Unicode too) is kept.
 */
export function printable(text: string): string {
  return text.replace(UNSAFE, escape);
}
