/**
 * Prometheus metrics of the cloud service, in the text exposition format 0.0.4 (served on
 * /metrics by cloud/http/server.ts).
 *
 * A few dozen lines of registry instead of prom-client: the service needs counters with labels,
 * gauges read at scrape time and three histograms, and nothing else; this keeps the dependency
 * list (and what runs inside the service) short. The format is checked by test/cloud/service-units.
 */

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

const NEEDS_ESCAPE = /[\\\n"]/;

/** `{k="v",…}` (or ''): counted once per message, so a plain loop, and escaping only when needed. */
function labelText(labels: Labels): string {
  let out = '';
  for (const k in labels) {
    const v = labels[k]!;
    out += `${out === '' ? '{' : ','}${k}="${NEEDS_ESCAPE.test(v) ? escapeLabel(v) : v}"`;
  }
  return out === '' ? out : `${out}}`;
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

interface Metric {
  readonly name: string;
  render(): Promise<string> | string;
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`;
}

export class Counter implements Metric {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    this.#entry(labels).value += by;
  }

  /**
   * These labels, bound once: `inc()` on what it returns counts without building the labels'
   * text again (for counts made per message). Nothing is shown for them until counted.
   */
  bind(labels: Labels): { inc(by?: number): void } {
    const own = { ...labels };
    let entry: { value: number } | undefined;
    return {
      inc: (by = 1) => {
        entry ??= this.#entry(own);
        entry.value += by;
      },
    };
  }

  #entry(labels: Labels): { labels: Labels; value: number } {
    const key = labelText(labels);
    let entry = this.#values.get(key);
    if (entry === undefined) {
      entry = { labels: { ...labels }, value: 0 };
      this.#values.set(key, entry);
    }
    return entry;
  }

  /** The value for exactly these labels (0 if never counted). */
  get(labels: Labels = {}): number {
    return this.#values.get(labelText(labels))?.value ?? 0;
  }

  /** Every labelled value. */
  entries(): { labels: Labels; value: number }[] {
    return [...this.#values.values()].map((e) => ({ labels: { ...e.labels }, value: e.value }));
  }

  render(): string {
    let out = header(this.name, this.help, 'counter');
    for (const { labels, value } of this.#values.values()) out += `${this.name}${labelText(labels)} ${num(value)}\n`;
    return out;
  }
}

/** A gauge read when scraped. */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number | Promise<number> | { labels: Labels; value: number }[],
  ) {}

  async render(): Promise<string> {
    const v = await this.read();
    let out = header(this.name, this.help, 'gauge');
    if (Array.isArray(v)) for (const { labels, value } of v) out += `${this.name}${labelText(labels)} ${num(value)}\n`;
    else out += `${this.name} ${num(v)}\n`;
    return out;
  }
}

export class Histogram implements Metric {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.#counts = new Array(buckets.length).fill(0);
  }

  observe(v: number): void {
    this.#sum += v;
    this.#count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.#counts[i]!++;
  }

  get count(): number {
    return this.#count;
  }

  get sum(): number {
    return this.#sum;
  }

  render(): string {
    let out = header(this.name, this.help, 'histogram');
    this.buckets.forEach((le, i) => {
      out += `${this.name}_bucket{le="${num(le)}"} ${this.#counts[i]}\n`;
    });
    out += `${this.name}_bucket{le="+Inf"} ${this.#count}\n${this.name}_sum ${num(this.#sum)}\n${this.name}_count ${this.#count}\n`;
    return out;
  }
}

export class Registry {
  readonly #metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    if (this.#metrics.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.#metrics.push(metric);
    return metric;
  }

  /** The exposition text (Content-Type text/plain; version=0.0.4). */
  async text(): Promise<string> {
    const parts = await Promise.all(
      this.#metrics.map(async (m) => {
        try {
          return await m.render();
        } catch {
          return ''; // a gauge whose source is down (the store) is left out of this scrape
        }
      }),
    );
    return parts.join('');
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What the service reads when scraped. */
export interface MetricSources {
  sessionsCached: () => number;
  pending: () => number;
  commitQueue: () => number;
  unacked: () => number;
  mqttConnected: () => boolean;
  mqttReconnects: () => number;
  /** Store-wide counts (devices, sessions, payloads); read at most once a minute. */
  storeStats: () => Promise<{ devices: number; sessions: number; payloads: number }>;
}

/** Store-wide counts cost a count over the payloads table: refreshed at most once a minute. */
const STORE_STATS_MS = 60_000;
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/** The service's metrics (names in docs/CLOUD.md). */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly received: Counter;
  readonly accepted: Counter;
  readonly duplicates: Counter;
  readonly rejected: Counter;
  readonly rekeyRequests: Counter;
  readonly storeErrors: Counter;
  readonly latency: Histogram;
  readonly batchSize: Histogram;
  readonly commitSeconds: Histogram;
  readonly readingAge: Histogram;
  readonly startedAt = Date.now();
  #watching = false;

  /** The counters and histograms; the gauges once `watch` names what they read (here when given). */
  constructor(sources?: MetricSources) {
    const r = this.registry;
    this.received = r.add(
      new Counter('cose_flow_messages_received_total', 'Messages received from the broker, by topic kind.'),
    );
    this.accepted = r.add(
      new Counter(
        'cose_flow_accepted_total',
        'Key messages stored as new sessions, and data payloads stored, by kind.',
      ),
    );
    this.duplicates = r.add(
      new Counter('cose_flow_duplicates_total', 'Messages already accepted before: acknowledged, not delivered again.'),
    );
    this.rejected = r.add(new Counter('cose_flow_rejected_total', 'Messages refused, by kind and reason code.'));
    this.rekeyRequests = r.add(
      new Counter(
        'cose_flow_rekey_requests_total',
        'Re-key requests for unknown kids, by outcome (sent, rate-limited, failed).',
      ),
    );
    this.storeErrors = r.add(
      new Counter('cose_flow_store_errors_total', 'Store operations that failed (and were retried).'),
    );
    this.latency = r.add(
      new Histogram(
        'cose_flow_delivery_latency_seconds',
        'From receiving a data message to acknowledging it after its payload was committed and delivered.',
        LATENCY_BUCKETS,
      ),
    );
    this.batchSize = r.add(
      new Histogram('cose_flow_commit_batch_size', 'Payloads per store transaction.', BATCH_BUCKETS),
    );
    this.commitSeconds = r.add(
      new Histogram('cose_flow_commit_duration_seconds', 'Duration of one store transaction.', LATENCY_BUCKETS),
    );
    this.readingAge = r.add(
      new Histogram(
        'cose_flow_reading_age_seconds',
        "From a reading's time stamp (its t, the device's clock) to its payload stored and delivered; a random sample of about 100 payloads a second.",
        LATENCY_BUCKETS,
      ),
    );
    if (sources !== undefined) this.watch(sources);
  }

  /** Adds the gauges, read from `sources` when scraped (once: the parts they read exist). */
  watch(sources: MetricSources): void {
    if (this.#watching) throw new Error('the metrics already watch their sources');
    this.#watching = true;
    const r = this.registry;
    r.add(new Gauge('cose_flow_sessions_cached', 'Sessions held in memory by this instance.', sources.sessionsCached));
    r.add(new Gauge('cose_flow_pending_messages', 'Data messages waiting for their key message.', sources.pending));
    r.add(
      new Gauge('cose_flow_commit_queue_depth', 'Decrypted payloads waiting for or in a commit.', sources.commitQueue),
    );
    r.add(new Gauge('cose_flow_unacked_messages', 'Messages received and not yet acknowledged.', sources.unacked));
    r.add(
      new Gauge('cose_flow_mqtt_connected', '1 while connected to the broker.', () =>
        sources.mqttConnected() ? 1 : 0,
      ),
    );
    r.add(new Gauge('cose_flow_mqtt_reconnects', 'Reconnections to the broker since start.', sources.mqttReconnects));
    let cached: { at: number; value: Promise<{ devices: number; sessions: number; payloads: number }> } | undefined;
    const stats = () => {
      const now = Date.now();
      if (cached === undefined || now - cached.at > STORE_STATS_MS) {
        const value = sources.storeStats();
        value.catch(() => {
          cached = undefined;
        });
        cached = { at: now, value };
      }
      return cached.value;
    };
    r.add(
      new Gauge(
        'cose_flow_store_sessions',
        'Sessions in the store (all instances).',
        async () => (await stats()).sessions,
      ),
    );
    r.add(new Gauge('cose_flow_store_devices', 'Devices in the store.', async () => (await stats()).devices));
    r.add(new Gauge('cose_flow_store_payloads', 'Payloads in the store.', async () => (await stats()).payloads));
    r.add(
      new Gauge('process_start_time_seconds', 'Start time of the process, seconds since the epoch.', () =>
        Math.floor(this.startedAt / 1000),
      ),
    );
  }

  /** Counts by reason (for tests and the health report). */
  rejectedByReason(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { labels, value } of this.rejected.entries()) {
      const reason = labels.reason ?? 'unknown';
      out[reason] = (out[reason] ?? 0) + value;
    }
    return out;
  }
}
