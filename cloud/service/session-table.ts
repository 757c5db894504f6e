/**
 * The sessions a service instance is working with, in memory: (device id, kid) → the session key
 * (opened from its sealed form in the store) and a mirror of its replay window.
 *
 * The store is the authority (several instances may share it); this table is a cache in front of
 * it. The mirror window only ever lags the store's: it starts from the window the store had when
 * the session was loaded and marks what this instance then commits. So when the mirror says a
 * sequence number is a duplicate or too old, the store would say so too, and the service answers
 * without decrypting (PROTOCOL.md §6.3 checks the window before decryption); when it says "new",
 * the store decides at commit.
 *
 * Least recently used sessions are dropped beyond `maxEntries`; a dropped session is loaded again
 * from the store when its next message arrives.
 *
 * A session the store reports closed (grace over, certificate revoked, reset-kid: its key may be
 * purged) loads as a `ClosedSession`, never opened, and is not cached. A cached session that
 * closes meanwhile is caught by the store at commit ('closed'); the caller then forgets it.
 */
import { toHex } from '../../src/bytes.js';
import type { SessionKey } from '../../src/profile/session.js';
import { ReplayWindow } from '../session/replay-window.js';
import type { Store } from '../store/store.js';
import type { SessionSealer } from './at-rest.js';

export interface LiveSession {
  deviceId: string;
  kid: Uint8Array;
  kidHex: string;
  key: SessionKey;
  /** The sealed key as stored: tells a reloaded session from the cached one. */
  sealed: Uint8Array;
  /** Lags the store's window; see the module comment. */
  window: ReplayWindow;
  /** Serial (hex) of the certificate the session was opened under, or null (stored before schema 2). */
  serial: string | null;
  closed: false;
}

/** A session the store holds but that has ended (PROTOCOL.md §6.1): its data is `session-closed`. */
export interface ClosedSession {
  deviceId: string;
  kid: Uint8Array;
  closed: true;
  closedAt: number;
}

export const DEFAULT_SESSION_CACHE = 100_000;

/** Device id, NUL, then the kid's bytes as char codes: per data message, so no hex (device ids have no NUL). */
function cacheKey(deviceId: string, kid: Uint8Array): string {
  let key = `${deviceId}\u0000`;
  for (let i = 0; i < kid.length; i++) key += String.fromCharCode(kid[i]!);
  return key;
}

export class SessionTable {
  readonly #store: Store;
  readonly #sealer: SessionSealer;
  readonly #max: number;
  readonly #live = new Map<string, LiveSession>();
  readonly #loading = new Map<string, Promise<LiveSession | ClosedSession | undefined>>();

  constructor(store: Store, sealer: SessionSealer, maxEntries = DEFAULT_SESSION_CACHE) {
    this.#store = store;
    this.#sealer = sealer;
    this.#max = Math.max(1, maxEntries);
  }

  get size(): number {
    return this.#live.size;
  }

  /** The cached session, or undefined (no store access). */
  cached(deviceId: string, kid: Uint8Array): LiveSession | undefined {
    const key = cacheKey(deviceId, kid);
    const live = this.#live.get(key);
    if (live !== undefined) {
      this.#live.delete(key);
      this.#live.set(key, live);
    }
    return live;
  }

  /**
   * The session from the store (current epoch), opened and cached; undefined when the store holds
   * none. Throws the store's errors, and AtRestError when the sealed key does not open.
   */
  load(deviceId: string, kid: Uint8Array): Promise<LiveSession | ClosedSession | undefined> {
    // One store read per session at a time: the messages of a session that all missed the cache
    // wait for the same read, and continue in their arrival order.
    const key = cacheKey(deviceId, kid);
    const running = this.#loading.get(key);
    if (running !== undefined) return running;
    const load = this.#load(deviceId, kid).finally(() => this.#loading.delete(key));
    this.#loading.set(key, load);
    return load;
  }

  async #load(deviceId: string, kid: Uint8Array): Promise<LiveSession | ClosedSession | undefined> {
    const record = await this.#store.getSession(deviceId, kid);
    if (record === undefined) {
      this.forget(deviceId, kid);
      return undefined;
    }
    if (record.closedAt !== null) {
      this.forget(deviceId, kid);
      return { deviceId, kid: kid.slice(), closed: true, closedAt: record.closedAt };
    }
    const key = this.#sealer.open(deviceId, kid, record.wrappedKey);
    const live: LiveSession = {
      deviceId,
      kid: kid.slice(),
      kidHex: toHex(kid),
      key,
      sealed: record.wrappedKey,
      window: ReplayWindow.deserialize(record.window, this.#store.windowSize),
      serial: record.certificateSerial,
      closed: false,
    };
    this.#put(live);
    return live;
  }

  /** A session this instance has just stored (its window is empty). */
  remember(deviceId: string, key: SessionKey, sealed: Uint8Array, serial: string | null = null): LiveSession {
    const live: LiveSession = {
      deviceId,
      kid: key.kid.slice(),
      kidHex: toHex(key.kid),
      key,
      sealed,
      window: new ReplayWindow(this.#store.windowSize),
      serial,
      closed: false,
    };
    this.#put(live);
    return live;
  }

  forget(deviceId: string, kid: Uint8Array): void {
    // Not wiped: a message in flight may still hold it.
    this.#live.delete(cacheKey(deviceId, kid));
  }

  /** Forgets every cached session of the device (after they were closed in the store). */
  forgetDevice(deviceId: string): void {
    const prefix = `${deviceId}\u0000`;
    for (const key of [...this.#live.keys()]) if (key.startsWith(prefix)) this.#live.delete(key);
  }

  /** Drops every session and wipes the keys held in memory (once nothing is in flight). */
  clear(): void {
    for (const live of this.#live.values()) live.key.key.fill(0);
    this.#live.clear();
  }

  #put(live: LiveSession): void {
    const key = cacheKey(live.deviceId, live.kid);
    const old = this.#live.get(key);
    if (old !== undefined && old !== live) {
      this.#live.delete(key);
      // Messages in flight may still hold `old`: do not wipe its key here.
    }
    this.#live.set(key, live);
    while (this.#live.size > this.#max) {
      const oldest = this.#live.keys().next().value!;
      this.#live.delete(oldest);
    }
  }
}
