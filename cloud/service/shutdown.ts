/**
 * How the service stops, and the two small tools its start uses for it: `Teardown` (what the
 * start opened, closed in reverse) and `Once` (stop() runs once; health reports "stopping" from
 * the first call).
 */
import type { MqttConsumer } from '../mqtt/consumer.js';
import type { Logger } from './log.js';
import type { ServiceMetrics } from './metrics.js';
import type { Pipeline } from './pipeline.js';

/**
 * Stops consuming (whatever arrives now stays unacknowledged: the broker redelivers it), waits for
 * in-flight messages (at most `shutdownTimeoutMs`, then gives up on them), disconnects, closes what
 * the start opened (in reverse), and logs the totals.
 */
export async function stopService(parts: {
  log: Logger;
  /** How long to wait for in-flight messages (ms). */
  timeoutMs: number;
  pipeline: Pipeline;
  consumer: MqttConsumer;
  metrics: ServiceMetrics;
  /** The pending buffer's sweep: stopped first. */
  sweeper: NodeJS.Timeout;
  teardown: Teardown;
}): Promise<void> {
  const { log, timeoutMs } = parts;
  const { receiver, pending, commits, sessions } = parts.pipeline;
  parts.consumer.pauseDelivery();
  clearInterval(parts.sweeper);
  pending.clear(); // unacknowledged too
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    receiver.idle().then(() => false),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    log.warn({ event: 'shutdown-timeout', inFlight: receiver.inFlight }, 'giving up on in-flight messages');
    receiver.stop();
    commits.abort(new Error('the service is stopping'));
    await receiver.idle();
  }
  receiver.stop();
  await parts.consumer.close();
  await parts.teardown.run((e) => log.error({ event: 'stop-error', error: e.message }));
  sessions.clear();
  const { metrics } = parts;
  log.info(
    {
      event: 'stopped',
      accepted: { session: metrics.accepted.get({ kind: 'session' }), data: metrics.accepted.get({ kind: 'data' }) },
      duplicates: {
        session: metrics.duplicates.get({ kind: 'session' }),
        data: metrics.duplicates.get({ kind: 'data' }),
      },
      rejected: metrics.rejectedByReason(),
    },
    'cloud service stopped',
  );
  log.flush?.();
}

/** What the start opened, closed in reverse order. */
export class Teardown {
  readonly #steps: (() => void | Promise<void>)[] = [];

  defer(step: () => void | Promise<void>): void {
    this.#steps.push(step);
  }

  /** Runs every step, last deferred first; a step that fails goes to `onError` and the rest still run. */
  async run(onError: (e: Error) => void): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step();
      } catch (e) {
        onError(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }
}

/** Runs `fn` on the first call; every call returns its promise. */
export class Once {
  readonly #fn: () => Promise<void>;
  #running: Promise<void> | undefined;

  constructor(fn: () => Promise<void>) {
    this.#fn = fn;
  }

  get started(): boolean {
    return this.#running !== undefined;
  }

  run(): Promise<void> {
    this.#running ??= this.#fn();
    return this.#running;
  }
}
