/**
 * The device's sessions: the next kid from the persisted reservation (src/device/kid-allocator.ts:
 * a reset at any moment never reuses a kid), a session key and Base IV from the platform RNG
 * (`newSessionKey`, src/profile/session.ts), the key message (src/profile/key-message.ts)
 * published with QoS 2 — the same bytes again after a reconnect, a failure or `keyAckTimeoutMs`
 * until its QoS 2 flow completes; only then may data under that kid leave (`acked`) — and when
 * a session is due for a re-key (`rekeyDue`). Runtime-neutral.
 */
import type { Backoff } from '../backoff.js';
import type { P256PrivateKey } from '../crypto/provider.js';
import { makeKeyMessage } from '../profile/key-message.js';
import { newSessionKey, type SessionKey } from '../profile/session.js';
import { topic } from '../profile/topics.js';
import type { DeviceContext, RekeyReason } from './context.js';
import { KidAllocator } from './kid-allocator.js';

export interface CurrentSession {
  kid: number;
  key: SessionKey;
  seq: number;
  startedAt: number;
  keyMessage: Uint8Array;
  keyAcked: boolean;
  keyInFlight: boolean;
}

/** What a key message is made from, asked for at each session start (the cloud key may have changed). */
export interface KeyMaterial {
  deviceKey: P256PrivateKey;
  deviceCertificate: Uint8Array;
  cloudPublicKey: Uint8Array;
}

export interface SessionHooks {
  /** The key material for a new session (called once per start, before the kid is taken). */
  material(): KeyMaterial;
  /** A session was started (logged and emitted); its key message is sent right after. */
  started(session: CurrentSession): void;
  /** A key message's QoS 2 flow completed. */
  acked(session: CurrentSession): void;
}

export class Sessions {
  readonly #ctx: DeviceContext;
  readonly #kids: KidAllocator;
  readonly #retry: Backoff;
  readonly #hooks: SessionHooks;
  /** Kids whose key message completed its QoS 2 flow in this boot: their data may be sent. */
  readonly #ackedKids = new Set<number>();
  #current: CurrentSession | undefined;
  #starting = false;
  #pending: RekeyReason | undefined;

  constructor(ctx: DeviceContext, retry: Backoff, hooks: SessionHooks) {
    this.#ctx = ctx;
    this.#kids = new KidAllocator(ctx.p.store, { block: ctx.config.kidBlock });
    this.#retry = retry;
    this.#hooks = hooks;
  }

  get current(): CurrentSession | undefined {
    return this.#current;
  }

  /** The kids reserved in the store (for the boot log line). */
  reservation(): ReturnType<KidAllocator['reservation']> {
    return this.#kids.reservation();
  }

  /** Whether data sealed under `kid` may be published: its key message completed. */
  acked(kid: number): boolean {
    return this.#ackedKids.has(kid);
  }

  /** Starts a new session (a start asked for while one is being made runs right after it). */
  start(reason: RekeyReason): void {
    const ctx = this.#ctx;
    if (ctx.stopped) return;
    if (this.#starting) {
      this.#pending = reason;
      return;
    }
    this.#starting = true;
    try {
      const material = this.#hooks.material();
      let kid: number;
      try {
        kid = this.#kids.next(); // persisted (reserved) before it is used anywhere
      } catch (e) {
        ctx.fail('kid-allocation-failed', e);
        ctx.after(this.#retry.next(), () => this.start('retry'));
        return;
      }
      const key = newSessionKey(ctx.p.rng, kid);
      const keyMessage = makeKeyMessage(ctx.p.crypto, {
        deviceId: ctx.deviceId,
        deviceKey: material.deviceKey,
        deviceCertificate: material.deviceCertificate,
        cloudPublicKey: material.cloudPublicKey,
        session: key,
      });
      const previous = this.#current;
      if (previous !== undefined) {
        previous.key.key.fill(0);
        previous.key.baseIv.fill(0);
      }
      const session: CurrentSession = {
        kid,
        key,
        seq: 0,
        startedAt: ctx.p.clock.uptimeMs(),
        keyMessage,
        keyAcked: false,
        keyInFlight: false,
      };
      this.#current = session;
      this.#retry.reset();
      ctx.stats.sessions++;
      if (reason !== 'boot') ctx.stats.rekeys++;
      ctx.log('info', 'session', { kid, reason });
      ctx.emit({ type: 'session', kid, reason, keyMessage });
      this.#hooks.started(session);
      this.sendKeyMessage();
    } finally {
      this.#starting = false;
    }
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#pending = undefined;
      this.start(pending);
    }
  }

  /** Publishes the current key message (QoS 2) unless it is acknowledged or in flight. */
  sendKeyMessage(): void {
    const ctx = this.#ctx;
    const session = this.#current;
    if (session === undefined || session.keyAcked || session.keyInFlight || !ctx.p.mqtt.connected || ctx.stopped) {
      return;
    }
    session.keyInFlight = true;
    ctx.stats.keyMessages++;
    const timeout = ctx.after(ctx.config.keyAckTimeoutMs, () => {
      // The QoS 2 flow did not complete in time: send the same bytes again (a duplicate for the cloud).
      if (this.#current === session && !session.keyAcked) {
        ctx.log('warn', 'key-message-timeout', { kid: session.kid });
        session.keyInFlight = false;
        this.sendKeyMessage();
      }
    });
    ctx.p.mqtt.publish(topic('session', ctx.deviceId, ctx.config.prefix), session.keyMessage, { qos: 2 }).then(
      () => {
        ctx.cancel(timeout);
        if (ctx.stopped) return;
        session.keyInFlight = false;
        if (session.keyAcked) return;
        session.keyAcked = true;
        ctx.stats.keyAcked++;
        this.#ackedKids.add(session.kid);
        ctx.log('info', 'key-acked', { kid: session.kid });
        ctx.emit({ type: 'key-acked', kid: session.kid });
        this.#hooks.acked(session);
      },
      (e: unknown) => {
        ctx.cancel(timeout);
        if (ctx.stopped) return;
        session.keyInFlight = false;
        ctx.log('warn', 'key-message-failed', { kid: session.kid, error: String(e) });
        // Sent again on the next connection (the app's link-up), or soon when the link is still up.
        if (ctx.p.mqtt.connected) ctx.after(this.#retry.next(), () => this.sendKeyMessage());
      },
    );
  }

  /** The link went down: the key message in flight was rejected with it, and is to be sent again. */
  linkDown(): void {
    if (this.#current !== undefined) this.#current.keyInFlight = false;
  }

  /** Why the current session is to be replaced before its next message, if it is. */
  rekeyDue(): RekeyReason | undefined {
    const session = this.#current;
    if (session === undefined) return undefined;
    const policy = this.#ctx.config.rekey;
    if (session.seq > policy.seqLimit) return 'seq-limit';
    if (policy.afterMessages > 0 && session.seq >= policy.afterMessages) return 'messages';
    if (policy.afterMs > 0 && this.#ctx.p.clock.uptimeMs() - session.startedAt >= policy.afterMs) return 'age';
    return undefined;
  }
}
