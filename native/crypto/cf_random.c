/*
 * cf_random: bytes from the platform's hardware or kernel random number generator. No PSA here,
 * so the desktop simulator can link this file alone (it takes its crypto from noble).
 *
 *   ESP32 (ESP-IDF)   esp_fill_random: the hardware RNG. It is a true RNG only while an entropy
 *                     source runs: the RF subsystem (Wi-Fi/BT; the SDK starts Wi-Fi only when `ssid`
 *                     is configured) or the SAR ADC source of bootloader_random_enable(); otherwise
 *                     ESP-IDF documents its output as pseudo-random ("Random Number Generation").
 *                     PSA on ESP-IDF 6 has no DRBG of its own: it reads esp_fill_random directly, so
 *                     the same holds for keys PSA generates. The one long-lived secret made here,
 *                     the original ESP32's device secret, is drawn with the bootloader's source on
 *                     (cf_device_key.c); session keys are made once the network is up.
 *   Linux             getrandom(2): the kernel CSPRNG, blocking only until it is first seeded.
 *   macOS, BSD        getentropy(3), at most 256 bytes per call.
 *   Windows           BCryptGenRandom with the system-preferred RNG.
 *
 * Never rand() or the Moddable SDK's RC4 generator (docs/NOTES-XS.md: unseeded on the desktop).
 */
#include "cf_crypto.h"

/*
 * Here, not in cf_crypto.c: xs_cf_random.c uses it, and the desktop simulator links this file
 * without cf_crypto.c (an undefined symbol in mc.so makes mcsim's dlopen fail, and mcsim then
 * quits silently).
 */
const char* cf_status_name(cf_status status)
{
	switch (status) {
	case CF_OK:
		return "ok";
	case CF_ERR_BAD_INPUT:
		return "bad-input";
	case CF_ERR_BAD_KEY:
		return "bad-key";
	case CF_ERR_DECRYPT_FAILED:
		return "decrypt-failed";
	case CF_ERR_BAD_SIGNATURE:
		return "bad-signature";
	case CF_ERR_UNAVAILABLE:
		return "unavailable";
	case CF_ERR_NO_MEMORY:
		return "no-memory";
	case CF_ERR_INTERNAL:
		return "internal";
	}
	return "unknown";
}

#if defined(ESP_PLATFORM)

#include "esp_random.h"

cf_status cf_random(uint8_t* out, size_t length)
{
	if (length)
		esp_fill_random(out, length);
	return CF_OK;
}

#elif defined(__linux__)

#include <errno.h>
#include <sys/random.h>

cf_status cf_random(uint8_t* out, size_t length)
{
	while (length > 0) {
		ssize_t got = getrandom(out, length, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return CF_ERR_UNAVAILABLE;
		}
		out += got;
		length -= (size_t)got;
	}
	return CF_OK;
}

#elif defined(__APPLE__) || defined(__OpenBSD__) || defined(__FreeBSD__)

#include <sys/random.h>
#include <unistd.h>

#define CF_GETENTROPY_MAX 256

cf_status cf_random(uint8_t* out, size_t length)
{
	while (length > 0) {
		size_t chunk = (length < CF_GETENTROPY_MAX) ? length : CF_GETENTROPY_MAX;
		if (getentropy(out, chunk) != 0)
			return CF_ERR_UNAVAILABLE;
		out += chunk;
		length -= chunk;
	}
	return CF_OK;
}

#elif defined(_WIN32)

#include <windows.h>

#include <bcrypt.h>
#pragma comment(lib, "bcrypt.lib")

cf_status cf_random(uint8_t* out, size_t length)
{
	while (length > 0) {
		ULONG chunk = (length < 0x40000000) ? (ULONG)length : 0x40000000;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, out, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return CF_ERR_UNAVAILABLE;
		out += chunk;
		length -= chunk;
	}
	return CF_OK;
}

#else
#error "cf_random: no secure random source for this platform"
#endif
