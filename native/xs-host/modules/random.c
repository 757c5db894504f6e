/*
 * crypto.getRandomValues for the xs-host, as a native module (xsmc.h): fills an integer typed
 * array with bytes from the kernel's CSPRNG (getrandom(2), which blocks only until the pool is
 * first seeded). Never rand(): see FACTS.md.
 *
 * As the Web API: only Int8/Uint8/Uint8Clamped/Int16/Uint16/Int32/Uint32/BigInt64/BigUint64
 * arrays, at most 65536 bytes per call, the array itself is returned.
 */
#include "xsmc.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define MAX_RANDOM_BYTES 65536

static const char* const gxIntegerArrays[] = {
	"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
	"Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array", NULL,
};

static void fillRandom(xsMachine* the, uint8_t* data, size_t size)
{
	while (size > 0) {
		ssize_t got = getrandom(data, size, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			xsUnknownError("getRandomValues: getrandom failed: %s", strerror(errno));
		}
		data += got;
		size -= (size_t)got;
	}
}

void xs_host_get_random_values(xsMachine* the)
{
	xsIntegerValue byteOffset, byteLength;
	int i;
	uint8_t* data;
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
	if (byteLength > MAX_RANDOM_BYTES)
		xsRangeError("getRandomValues: %d bytes asked, at most %d per call", (int)byteLength, MAX_RANDOM_BYTES);
	xsmcGet(xsVar(0), xsArg(0), xsID("byteOffset"));
	byteOffset = xsmcToInteger(xsVar(0));
	xsmcGet(xsVar(1), xsArg(0), xsID("buffer"));
	/* No allocation between taking the address and filling: the buffer cannot move meanwhile. */
	data = (uint8_t*)xsmcToArrayBuffer(xsVar(1));
	fillRandom(the, data + byteOffset, (size_t)byteLength);
	xsResult = xsArg(0);
}
