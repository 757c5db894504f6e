/**
 * What `cose-flow demo` prints: the live screen (redrawn once a second on a terminal), the status
 * line (once every two seconds otherwise) and the summary at the end. Pure functions of the
 * service's LiveSnapshot and the demo's summary, so tests can call them.
 */
import type { LiveDevice, LiveSnapshot } from '../cloud/dashboard/live-state.js';
import type { DemoSummary } from '../system/demo.js';

export interface ScreenInfo {
  brokerUrl: string;
  embeddedBroker: boolean;
  storeUrl: string;
  dashboardUrl: string | undefined;
  attack: { rounds: number; injected: Record<string, number> } | undefined;
  /** Rows available for the device table. */
  maxDevices?: number;
  /** The last notes (device errors, …), shown under the screen. */
  notes?: readonly string[];
  /** Terminal width: longer lines are cut (a wrapped line would scroll the screen). */
  columns?: number;
  /** SHA-256 of the CA certificate, hex: what a device can pin. */
  caFingerprint?: string;
  /** Refusals in red (a terminal that has colour, NO_COLOR unset). */
  color?: boolean;
}

/** Enter the terminal's alternate screen (hiding the cursor) / leave it (showing the cursor). */
export const ALTERNATE_SCREEN = { enter: '\x1b[?1049h\x1b[?25l', leave: '\x1b[?1049l\x1b[?25h' } as const;

/**
 * One frame drawn over the last one: cursor home, each line clearing what is left of the old one,
 * then everything below cleared — no full-screen clear, so nothing is pushed into the scrollback.
 */
export function frameInPlace(screen: string): string {
  return `\x1b[H${screen.replaceAll('\n', '\x1b[K\n')}\x1b[K\x1b[J`;
}

const RED = '\x1b[31m';
const RESET = '\x1b[0m';

/** A kid counter for people: the decimal number it is ("11" hex → 17). */
export function kidNumber(kidHex: string | undefined): string {
  if (kidHex === undefined || !/^[0-9a-f]+$/i.test(kidHex)) return '—';
  const n = BigInt(`0x${kidHex}`);
  return n.toString();
}

export function age(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** A reading in a few characters: temperature, free heap, uptime; else compact JSON. */
export function readingText(reading: unknown): string {
  if (reading === undefined) return '—';
  if (reading !== null && typeof reading === 'object' && !Array.isArray(reading)) {
    const r = reading as Record<string, unknown>;
    const parts: string[] = [];
    if (typeof r.temp === 'number') parts.push(`${r.temp.toFixed(2)} °C`);
    if (typeof r.heap === 'number') parts.push(`heap ${r.heap}`);
    if (typeof r.up === 'number') parts.push(`up ${r.up} s`);
    if (parts.length > 0) return parts.join(' · ');
  }
  const text = JSON.stringify(reading);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

function latencyText(latency: LiveSnapshot['latency']): string {
  return latency === null
    ? 'latency —'
    : `latency p50 ${latency.p50Ms.toFixed(0)} ms · p95 ${latency.p95Ms.toFixed(0)} ms (device clock → stored)`;
}

function rejectionsText(rejections: Record<string, number>): string {
  const entries = Object.entries(rejections).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? 'none' : entries.map(([reason, n]) => `${reason} ${n}`).join(' · ');
}

function deviceRow(d: LiveDevice, now: number): string {
  return [
    d.deviceId.padEnd(12),
    kidNumber(d.kid ?? undefined).padStart(6),
    String(d.seq ?? '—').padStart(6),
    age(d.sessionAt, now).padStart(8),
    String(d.messages).padStart(6),
    `  ${readingText(d.reading)}`,
  ].join(' ');
}

/** The whole screen, one string (no escape codes). */
export function renderScreen(s: LiveSnapshot, info: ScreenInfo): string {
  const lines: string[] = [];
  lines.push(
    `cose-flow demo · broker ${info.brokerUrl}${info.embeddedBroker ? ' (embedded)' : ''} · store ${info.storeUrl}`,
  );
  lines.push(
    info.dashboardUrl === undefined
      ? 'dashboard off'
      : `dashboard ${info.dashboardUrl}  ·  Ctrl-C stops and prints a summary`,
  );
  if (info.caFingerprint !== undefined) lines.push(`CA SHA-256 ${info.caFingerprint}`);
  lines.push('');
  lines.push(
    `up ${age(s.startedAt, s.at)} · sessions ${s.totals.sessions} · stored ${s.totals.accepted} · ` +
      `${s.perSecond.toFixed(1)} msg/s · duplicates ${s.totals.duplicates} · rejected ${s.totals.rejected}`,
  );
  lines.push(latencyText(s.latency));
  lines.push('');
  lines.push(
    `${'device'.padEnd(12)} ${'kid'.padStart(6)} ${'seq'.padStart(6)} ${'session'.padStart(8)} ${'msgs'.padStart(6)}   last reading (decrypted)`,
  );
  const max = info.maxDevices ?? 20;
  for (const d of s.devices.slice(0, max)) lines.push(deviceRow(d, s.at));
  if (s.devices.length > max) lines.push(`… and ${s.devices.length - max} more devices (see the dashboard)`);
  if (s.devices.length === 0) lines.push('(no device has sent a message yet: enrolling, starting sessions…)');
  else
    lines.push(
      'kid: the session number; a restarted device goes on from the next block of 16 it reserved, so it can jump',
    );
  lines.push('');
  const refusalsFrom = lines.length;
  lines.push(`rejected by reason: ${rejectionsText(s.rejections)}`);
  for (const r of s.recentRejections.slice(-3).reverse()) {
    const where = [
      r.deviceId,
      r.kid === undefined ? undefined : `kid ${kidNumber(r.kid)}`,
      r.seq === undefined ? undefined : `seq ${r.seq}`,
    ]
      .filter((x) => x !== undefined)
      .join(' ');
    const detail = r.detail.length > 70 ? `${r.detail.slice(0, 69)}…` : r.detail;
    lines.push(`  ${new Date(r.at).toISOString().slice(11, 19)} ${r.reason} ${where} — ${detail}`);
  }
  if (info.attack !== undefined) {
    const injected = Object.entries(info.attack.injected).filter(([, n]) => n > 0);
    const total = injected.reduce((n, [, v]) => n + v, 0);
    lines.push(
      `attack: ${info.attack.rounds} round(s), ${total} message(s) injected` +
        (injected.length === 0 ? '' : ` (${injected.map(([k, n]) => `${k} ${n}`).join(', ')})`),
    );
  }
  const refusalsTo = lines.length;
  for (const n of info.notes ?? []) lines.push(`! ${n}`);
  const width = info.columns;
  const cut =
    width === undefined || width < 20 ? lines : lines.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
  if (info.color && s.totals.rejected > 0)
    for (let i = refusalsFrom; i < refusalsTo; i++)
      if (!cut[i]!.startsWith('attack')) cut[i] = `${RED}${cut[i]}${RESET}`;
  return cut.join('\n');
}

/** One line for logs and non-terminal output; `fleet`: the demo's own device ids. */
export function statusLine(s: LiveSnapshot, fleet: ReadonlySet<string>): string {
  const withSession = s.devices.filter((d) => d.sessions > 0 && fleet.has(d.deviceId)).length;
  const others = s.devices.filter((d) => !fleet.has(d.deviceId)).length;
  return (
    `${age(s.startedAt, s.at)} · ${withSession}/${fleet.size} devices with a session` +
    (others > 0 ? ` (+${others} other)` : '') +
    ` · stored ${s.totals.accepted} · ` +
    `${s.perSecond.toFixed(1)} msg/s · duplicates ${s.totals.duplicates} · rejected ${s.totals.rejected}` +
    (s.totals.rejected > 0 ? ` (${rejectionsText(s.rejections)})` : '') +
    ` · ${latencyText(s.latency).replace(' (device clock → stored)', '')}`
  );
}

export function formatSummary(sum: DemoSummary): string {
  const lines: string[] = [];
  const t = sum.totals;
  lines.push(`summary: ${sum.devices.length} device(s), ${sum.seconds} s, broker ${sum.broker}, store ${sum.store}`);
  for (const d of sum.devices) {
    lines.push(
      `  ${d.deviceId}: session kid ${d.kids.length === 0 ? 'none' : d.kids.map((k) => kidNumber(k)).join(', ')}; sealed ${d.sealed}, ` +
        `acknowledged ${d.acknowledged}, stored ${d.stored}${d.missing > 0 ? `, MISSING ${d.missing}` : ''}`,
    );
  }
  lines.push(
    `  sessions: ${sum.allSessions ? 'every device established one' : 'NOT every device established one'} ` +
      `(${t.sessions} started, ${t.rekeys} re-keys)`,
  );
  const acked = sum.devices.reduce((n, d) => n + d.acknowledged, 0);
  const stored = sum.devices.reduce((n, d) => n + d.stored, 0);
  lines.push(
    sum.qos === 1
      ? `  exactly once: ${sum.exactlyOnce ? 'yes' : 'NO'} — ${stored} of ${acked} acknowledged QoS 1 messages stored, ` +
          `${sum.deliveredTwice} delivered twice, ${sum.unexpected} stored that no device sent`
      : `  at most once (QoS 0): ${sum.exactlyOnce ? 'yes' : 'NO'} — ${stored} of ${acked} sent messages stored, ` +
          `${sum.deliveredTwice} delivered twice, ${sum.unexpected} stored that no device sent`,
  );
  lines.push(`  refused: ${rejectionsText(sum.rejected)}; duplicates acknowledged without storing: ${sum.duplicates}`);
  if (sum.attack !== null) {
    const total = Object.values(sum.attack.injected).reduce((a, b) => a + b, 0);
    lines.push(
      `  attack: ${total} message(s) injected in ${sum.attack.rounds} round(s) ` +
        `(${Object.entries(sum.attack.injected)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')}); stored: ${sum.unexpected}`,
    );
  }
  lines.push(`  ${latencyText(sum.latency)}`);
  if (sum.undrained > 0) lines.push(`  ${sum.undrained} device(s) still had queued messages when the demo stopped`);
  if (t.errors > 0) lines.push(`  device errors: ${t.errors} (see the device log)`);
  return `${lines.join('\n')}\n`;
}
