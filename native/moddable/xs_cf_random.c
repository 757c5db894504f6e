/*
 * XS bindings of the platform RNG (cf_random, native/crypto/cf_random.c), without PSA:
 *
 *   native("xs_cf_random")(length)            a new ArrayBuffer of `length` random bytes
 *   native("xs_cf_get_random_values")(view)   Web Crypto's crypto.getRandomValues
 *
 * The desktop simulator's application installs the second as globalThis.crypto.getRandomValues
 * for noble (src/moddable/platform-crypto.ts); the XS test host does the same at start-up.
 */
#include "xsmc.h"

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
 * As the Web API: only Int8/Uint8/Uint8Clamped/Int16/Uint16/Int32/Uint32/BigInt64/BigUint64
 * arrays, at most 65536 bytes per call; the array itself is returned.
 */
void xs_cf_get_random_values(xsMachine* the)
{
	xsIntegerValue byteOffset, byteLength;
	cf_status status;
	uint8_t* data;
	int i;
	xsmcVars(2);
	if (xsmcArgc < 1)
		xsTypeError("getRandomValues: expected an integer typed array");
	for (i = 0; gxIntegerArrays[i]; i++) {
		xsmcGet(xsVar(0), xsGlobal, xsID(gxIntegerArrays[i]));
		xsmcGet(xsVar(0), xsVar(0), xsID("prototype"));
		if (xsmcIsInstanceOf(xsArg(0), xsVar(0)))
			break;
	}
	if (!gxIntegerArrays[i])
		xsTypeError("getRandomValues: expected an integer typed array");
	xsmcGet(xsVar(0), xsArg(0), xsID("byteLength"));
	byteLength = xsmcToInteger(xsVar(0));
	if (byteLength > CF_GET_RANDOM_VALUES_MAX)
		xsRangeError("getRandomValues: %d bytes asked, at most %d per call", (int)byteLength, CF_GET_RANDOM_VALUES_MAX);
	xsmcGet(xsVar(0), xsArg(0), xsID("byteOffset"));
	byteOffset = xsmcToInteger(xsVar(0));
	xsmcGet(xsVar(1), xsArg(0), xsID("buffer"));
	/* No allocation between taking the address and filling: the buffer cannot move meanwhile. */
	data = (uint8_t*)xsmcToArrayBuffer(xsVar(1));
	status = cf_random(data + byteOffset, (size_t)byteLength);
	if (status != CF_OK)
		xsUnknownError("getRandomValues: the platform's random source failed (%s)", cf_status_name(status));
	xsResult = xsArg(0);
}
