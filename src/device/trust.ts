/**
 * What the device trusts and proves itself with: its certificates — configured (offline
 * provisioning: checked as an enrollment result is, never replaced by enrolling), stored, or
 * enrolled for (src/device/enrollment.ts, tried again with backoff until it succeeds or the app
 * stops, under one request id for the app's life; running out of attempts without an answer or
 * with `unavailable` is a slow enrollment, logged `enroll-slow` and not counted as an error) — and
 * the cloud certificate, verified against the CA (signature, key usage, validity when
 * the clock is known) before its key is used; a newer one announced by the cloud
 * (src/device/control.ts) is stored and used from the next session on. Runtime-neutral.
 */
import type { Backoff } from '../backoff.js';
import { equal } from '../bytes.js';
import { parseCertificate, verifyCloudCertificate } from '../pki/certificate.js';
import type { DeviceIdentity } from '../platform/huk.js';
import type { DeviceContext } from './context.js';
import { CredentialStore, type Credentials, verifyCredentials } from './credentials.js';
import { EnrollmentError, enrollDevice } from './enrollment.js';
import type { Link } from './link.js';
import type { KeyMaterial } from './session.js';

/** Enrollment ended without a certificate for one of these: the service is slow or busy, not failing. */
const SLOW: readonly string[] = ['no-answer', 'unavailable'];

export interface TrustedCloud {
  certificate: Uint8Array;
  publicKey: Uint8Array;
}

export class Trust {
  readonly #ctx: DeviceContext;
  readonly #identity: DeviceIdentity;
  readonly #store: CredentialStore;
  #credentials: Credentials | undefined;
  #cloud: TrustedCloud | undefined;
  /** A newer cloud certificate from a control message, used from the next session on. */
  #next: TrustedCloud | undefined;
  /** One enrollment request id for the app's life: a late answer to an earlier attempt still counts. */
  #requestId: Uint8Array | undefined;

  constructor(ctx: DeviceContext, identity: DeviceIdentity) {
    this.#ctx = ctx;
    this.#identity = identity;
    this.#store = new CredentialStore(ctx.p.store);
  }

  get credentials(): Credentials | undefined {
    return this.#credentials;
  }

  /** The cloud certificate in use (undefined until it verified) and the one announced next. */
  get cloud(): TrustedCloud | undefined {
    return this.#cloud;
  }

  get next(): TrustedCloud | undefined {
    return this.#next;
  }

  /** The stored certificates, when they are for this device's key. */
  loadStored(): void {
    const ctx = this.#ctx;
    try {
      this.#credentials = this.#store.load();
    } catch (e) {
      ctx.fail('credentials-unreadable', e);
      this.#credentials = undefined;
    }
    if (this.#credentials !== undefined && !this.#certifiesOurKey(this.#credentials.deviceCertificate)) {
      ctx.log('warn', 'credentials-mismatch', {
        reason: 'the stored device certificate is not for this key; enrolling again',
      });
      this.#credentials = undefined;
    }
  }

  /**
   * Offline provisioning: the configured certificates, checked exactly as an enrollment result is
   * (verifyCredentials), then stored (or the stored ones kept, see CredentialStore.adopt). False,
   * with one error line saying which certificate failed and why, when they do not verify.
   */
  adoptProvisioned(configured: Credentials): boolean {
    const ctx = this.#ctx;
    const settings = ctx.config.enroll;
    try {
      verifyCredentials(
        ctx.p.crypto,
        { ...configured, cloudCertificates: [configured.cloudCertificate] },
        {
          deviceId: ctx.deviceId,
          publicKey: this.#identity.key.publicKey,
          ...(settings.ca === undefined ? {} : { ca: settings.ca }),
          ...(settings.caFingerprint === undefined ? {} : { caFingerprint: settings.caFingerprint }),
          now: () => ctx.p.clock.now(),
        },
      );
    } catch (e) {
      ctx.fail('provisioning-refused', e, {
        action: 'refusing to send anything and not enrolling: the configured certificates do not verify',
      });
      return false;
    }
    try {
      const { credentials, stored } = this.#store.adopt(configured);
      this.#credentials = credentials;
      ctx.log('info', 'provisioned', { source: 'configuration', stored });
    } catch (e) {
      // They verified: use them from memory this boot; the store is tried again on the next one.
      ctx.fail('credentials-not-stored', e);
      this.#credentials = configured;
    }
    return true;
  }

  /** Enrolls until it succeeds (the certificates are stored) or the app stops (false). */
  async enroll(link: Link, retry: Backoff): Promise<boolean> {
    const ctx = this.#ctx;
    const settings = ctx.config.enroll;
    retry.reset();
    this.#requestId ??= ctx.p.crypto.randomBytes(16);
    while (!ctx.stopped) {
      await link.waitUp();
      if (ctx.stopped) return false;
      try {
        const enrolled = await enrollDevice({
          mqtt: ctx.p.mqtt,
          crypto: ctx.p.crypto,
          key: this.#identity.key,
          deviceId: ctx.deviceId,
          prefix: ctx.config.prefix,
          ...(settings.credential === undefined ? {} : { credential: settings.credential }),
          ...(settings.ca === undefined ? {} : { ca: settings.ca }),
          ...(settings.caFingerprint === undefined ? {} : { caFingerprint: settings.caFingerprint }),
          now: () => ctx.p.clock.now(),
          timers: ctx.p.timers,
          ...(settings.retry === undefined ? {} : { retry: settings.retry }),
          cancel: { cancelled: () => ctx.stopped, onCancel: (fn) => ctx.onStop(fn) },
          requestId: this.#requestId,
          onEvent: (e) => {
            // A result that does not verify (say, the CA was replaced and the cloud certificate is
            // still the old CA's) is an error an operator must see, not a debug line.
            if (e.type === 'invalid-result')
              ctx.fail('enroll-result-invalid', new Error(e.reason), { attempt: e.attempt });
            else ctx.log(e.type === 'enrolled' ? 'info' : 'debug', `enroll-${e.type}`, { attempt: e.attempt });
          },
        });
        if (ctx.stopped) return false;
        const credentials: Credentials = {
          deviceCertificate: enrolled.deviceCertificate,
          caCertificate: enrolled.caCertificate,
          cloudCertificate: enrolled.cloudCertificates[0]!,
        };
        this.#store.save(credentials);
        ctx.log('info', 'enrolled', { attempts: enrolled.attempts, caTrust: enrolled.caTrust });
        this.#credentials = credentials;
        return true;
      } catch (e) {
        if (ctx.stopped) return false;
        const final = e instanceof EnrollmentError && e.final;
        if (e instanceof EnrollmentError && SLOW.includes(e.code)) {
          // No answer yet, or a busy service: slow, not an error. Ask again (same request id).
          ctx.log('warn', 'enroll-slow', { code: e.code, attempts: e.attempts, error: e.message });
        } else ctx.fail(final ? 'enroll-refused' : 'enroll-failed', e);
        // Keep trying: an operator may fix a refusal (allow-list, re-key); a final refusal waits longest.
        await ctx.sleep(final ? ctx.config.retry.maxMs : retry.next());
      }
    }
    return false;
  }

  /** Checks the cloud certificate against the CA and trusts it; false (logged) when it fails. */
  trustCloud(): boolean {
    const ctx = this.#ctx;
    try {
      this.#cloud = { certificate: this.#credentials!.cloudCertificate, publicKey: this.#checkCloud() };
      return true;
    } catch (e) {
      ctx.fail('cloud-certificate-untrusted', e, {
        action: 'refusing to send anything: the cloud certificate does not verify against the CA',
      });
      return false;
    }
  }

  /** Stores a newer cloud certificate (already verified) and uses it from the next session on. */
  announce(next: TrustedCloud): boolean {
    const credentials = { ...this.#credentials!, cloudCertificate: next.certificate };
    try {
      this.#store.save(credentials);
    } catch (e) {
      this.#ctx.fail('cloud-certificate-not-stored', e);
      return false;
    }
    this.#credentials = credentials;
    this.#next = next;
    return true;
  }

  /** The key material for a new session: the announced cloud certificate, if any, takes over now. */
  forNewSession(): KeyMaterial {
    if (this.#next !== undefined) {
      this.#cloud = this.#next;
      this.#next = undefined;
    }
    return {
      deviceKey: this.#identity.key,
      deviceCertificate: this.#credentials!.deviceCertificate,
      cloudPublicKey: this.#cloud!.publicKey,
    };
  }

  #checkCloud(): Uint8Array {
    const ctx = this.#ctx;
    const { cloudCertificate, caCertificate } = this.#credentials!;
    return verifyCloudCertificate(ctx.p.crypto, cloudCertificate, caCertificate, ctx.p.clock.now());
  }

  #certifiesOurKey(certificate: Uint8Array): boolean {
    // Only whether the certificate is for this device's key: it was checked against the CA when
    // it was stored, and the cloud checks it on every key message.
    try {
      return equal(parseCertificate(certificate).publicKey, this.#identity.key.publicKey);
    } catch {
      return false;
    }
  }
}
