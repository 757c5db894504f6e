/** The cut of a refusal's detail text, the same in the service's log lines and on the dashboard. */

/** Longest `detail` a refusal line (or dashboard entry) carries; the rest is cut with "…". */
export const MAX_DETAIL_CHARS = 200;

/** `text` cut to `max` characters (with "…" and the length left out). */
export function truncateDetail(text: string, max = MAX_DETAIL_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}
