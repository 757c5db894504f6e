/*
 * XS bindings of the platform RNG (cf_random, native/crypto/cf_random.c), without PSA:
 *
 *   native("xs_cf_random")(length)            a new ArrayBuffer of `length` random bytes
 *   native("xs_cf_get_random_values")(view)   Web Crypto's crypto.getRandomValues
 *
 * The desktop simulator's application installs the second as globalThis.crypto.getRandomValues
 * for noble (src/moddable/sim/crypto.ts); the XS test host does the same at start-up.
 */
#include "xsmc.h"

#include <string.h>

#include "cf_crypto.h"

/* Web Crypto's quota per getRandomValues call. */
#define CF_GET_RANDOM_VALUES_MAX 65536
/* Far beyond any device's memory: a bound for the length argument, not a quota. */
#define CF_RANDOM_MAX 0x7FFFFFF

void xs_cf_random(xsMachine* the)
{
	xsNumberValue value;
	size_t length;
	cf_status status;
	xsType type = (xsmcArgc > 0) ? xsmcTypeOf(xsArg(0)) : xsUndefinedType;
	if ((type != xsIntegerType) && (type != xsNumberType))
		xsTypeError("random: expected a length");
	value = xsmcToNumber(xsArg(0));
	if (!(value >= 0) || (value > CF_RANDOM_MAX) || (value != (xsNumberValue)(size_t)value))
		xsRangeError("random: length must be an integer from 0 to %d", CF_RANDOM_MAX);
	length = (size_t)value;
	xsmcSetArrayBuffer(xsResult, NULL, (xsIntegerValue)length);
	status = cf_random((uint8_t*)xsmcToArrayBuffer(xsResult), length);
	if (status != CF_OK)
		xsUnknownError("random: the platform's random source failed (%s)", cf_status_name(status));
}

static const char* const gxIntegerArrays[] = {
	"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
	"Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array", NULL,
};

/*
 * Reflect.get(%TypedArray%.prototype, key, view): the value of the typed-array accessor `key`
 * (byteLength, byteOffset, buffer, @@toStringTag) read from the view's internal slots. The view's
 * own properties and those of the prototypes between it and %TypedArray%.prototype are not
 * consulted, so they cannot lie; xsTypedArrayPrototype is the engine's own %TypedArray%.prototype.
 */
static void typedArrayGet(xsMachine* the, xsSlot* result, xsSlot* reflect, xsSlot* key)
{
	xsmcCall(*result, *reflect, xsID("get"), &xsTypedArrayPrototype, key, &xsArg(0), NULL);
}

/* A byte length or offset from typedArrayGet: an integer from 0 to 2^31 - 1, else a TypeError. */
static xsNumberValue viewInteger(xsMachine* the, xsSlot* slot)
{
	xsNumberValue value;
	xsType type = xsmcTypeOf(*slot);
	if ((type != xsIntegerType) && (type != xsNumberType))
		xsTypeError("getRandomValues: expected an integer typed array");
	value = xsmcToNumber(*slot);
	if (!(value >= 0) || (value > 0x7FFFFFFF) || (value != (xsNumberValue)(xsIntegerValue)value))
		xsTypeError("getRandomValues: expected an integer typed array");
	return value;
}

/*
 * As the Web API: only Int8/Uint8/Uint8Clamped/Int16/Uint16/Int32/Uint32/BigInt64/BigUint64
 * arrays, at most 65536 bytes per call; the array itself is returned.
 *
 * Nothing the view says about itself is trusted. Its type and geometry come from the accessors
 * of %TypedArray%.prototype, which read the internal slots and refuse anything that is not a
 * typed array (a plain object, a DataView or an ArrayBuffer with a typed array's prototype, a
 * host object). Built-ins are frozen on the device; where they are not (the simulator, the test
 * host) a script could replace those accessors, so the result is checked again in C before
 * anything is written: the buffer must be a real ArrayBuffer (xsmcGetArrayBufferLength and
 * xsmcGetBufferWritable check its internal slot) and offset + length must lie within its real
 * length. A lie can then at worst fill bytes of an ArrayBuffer the script already holds.
 */
void xs_cf_get_random_values(xsMachine* the)
{
	xsNumberValue byteOffset, byteLength;
	xsUnsignedValue bufferLength;
	cf_status status;
	void* data;
	char* name;
	int i;
	xsmcVars(4);
	if ((xsmcArgc < 1) || (xsmcTypeOf(xsArg(0)) != xsReferenceType))
		xsTypeError("getRandomValues: expected an integer typed array");
	xsmcGet(xsVar(0), xsGlobal, xsID("Reflect"));
	xsmcGet(xsVar(1), xsGlobal, xsID("Symbol"));
	xsmcGet(xsVar(1), xsVar(1), xsID("toStringTag"));
	/* [[TypedArrayName]], or undefined for anything that is not a typed array. */
	typedArrayGet(the, &xsVar(2), &xsVar(0), &xsVar(1));
	if (xsmcTypeOf(xsVar(2)) != xsStringType)
		xsTypeError("getRandomValues: expected an integer typed array");
	name = xsmcToString(xsVar(2));
	for (i = 0; gxIntegerArrays[i]; i++) {
		if (!strcmp(name, gxIntegerArrays[i]))
			break;
	}
	if (!gxIntegerArrays[i])
		xsTypeError("getRandomValues: expected an integer typed array");
	xsmcSetString(xsVar(1), "byteLength");
	typedArrayGet(the, &xsVar(2), &xsVar(0), &xsVar(1));
	xsmcSetString(xsVar(1), "byteOffset");
	typedArrayGet(the, &xsVar(3), &xsVar(0), &xsVar(1));
	xsmcSetString(xsVar(1), "buffer");
	typedArrayGet(the, &xsVar(1), &xsVar(0), &xsVar(1));
	byteLength = viewInteger(the, &xsVar(2));
	byteOffset = viewInteger(the, &xsVar(3));
	if (byteLength > CF_GET_RANDOM_VALUES_MAX)
		xsRangeError("getRandomValues: %d bytes asked, at most %d per call", (int)byteLength, CF_GET_RANDOM_VALUES_MAX);
	xsResult = xsArg(0);
	if (byteLength == 0)
		return; /* also a view of a detached buffer, or one its resizable buffer shrank away from */
	/* Throws unless xsVar(1) is an ArrayBuffer (not a SharedArrayBuffer, host buffer or view). */
	(void)xsmcGetArrayBufferLength(xsVar(1));
	/* No allocation or script between taking the address and filling: the buffer cannot move. */
	xsmcGetBufferWritable(xsVar(1), &data, &bufferLength);
	if ((byteOffset > (xsNumberValue)bufferLength) || (byteLength > (xsNumberValue)bufferLength - byteOffset))
		xsRangeError("getRandomValues: the view lies outside its buffer");
	status = cf_random((uint8_t*)data + (size_t)byteOffset, (size_t)byteLength);
	if (status != CF_OK)
		xsUnknownError("getRandomValues: the platform's random source failed (%s)", cf_status_name(status));
}
