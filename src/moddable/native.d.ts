/**
 * The Moddable SDK's `Native` API for TypeScript (documentation/xs/"XS in C", section Native):
 * standard-syntax stand-ins for the SDK's `@ "name"` extension, which tsc cannot parse. xsc
 * compiles both into the same byte code as `@`, and only accepts them called with exactly one
 * string literal. The project's XS test host (native/xs-host) provides them as globals.
 *
 *   const sha256 = native<(data: Uint8Array) => ArrayBuffer>('xs_cf_sha256');
 *   class Key extends Native('xs_cf_p256_key_destructor') { … native('xs_…').call(this, …) … }
 */

/** The host function `name`, a C function `void name(xsMachine* the)`; methods take `this` with `.call`. */
declare function native<F extends (...args: never[]) => unknown = (...args: unknown[]) => unknown>(name: string): F;

/**
 * A base class whose instances are host objects: when XS collects one, it calls the C destructor
 * `name` (`void name(void* data)`) with the host data that a native function of the class set.
 */
declare function Native(name: string): new () => object;
