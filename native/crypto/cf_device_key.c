/*
 * The device identity from the hardware unique key (see cf_device_key.h): one derivation, three
 * sources of its secret S. The ESP32 parts compile only under ESP-IDF (ESP_PLATFORM).
 */
#include "cf_device_key.h"

#include <string.h>

#define CF_LABEL(text) ((const uint8_t*)(text)), (sizeof(text) - 1)

/* ---- the derivation: the same on every platform ---- */

cf_status cf_device_identity_from_secret(const uint8_t secret[CF_DEVICE_SECRET_BYTES], cf_p256_key* key,
	uint8_t id[CF_DEVICE_ID_BYTES])
{
	uint8_t seed[CF_P256_SEED_BYTES], d[CF_P256_SCALAR_BYTES];
	cf_status status = CF_OK;
	if (key) {
		status = cf_hkdf_sha256(secret, CF_DEVICE_SECRET_BYTES, NULL, 0, CF_LABEL(CF_DEVICE_KEY_INFO), seed,
			sizeof(seed));
		if (status == CF_OK) {
			cf_p256_scalar_from_seed(seed, d);
			status = cf_p256_import(key, d);
		}
		cf_wipe(seed, sizeof(seed));
		cf_wipe(d, sizeof(d));
	}
	if ((status == CF_OK) && id)
		status = cf_hkdf_sha256(secret, CF_DEVICE_SECRET_BYTES, NULL, 0, CF_LABEL(CF_DEVICE_ID_INFO), id,
			CF_DEVICE_ID_BYTES);
	if (status != CF_OK) {
		cf_p256_key_wipe(key);
		cf_wipe(id, id ? CF_DEVICE_ID_BYTES : 0);
	}
	return status;
}

/* ---- the source of S ---- */

/* S = HMAC-SHA-256(HUK, CF_DEVICE_SECRET_LABEL), computed wherever the HUK lives. */
static cf_status deviceSecret(uint8_t secret[CF_DEVICE_SECRET_BYTES]);

#if defined(ESP_PLATFORM)

#include "esp_err.h"
#include "soc/soc_caps.h"
#if defined(__has_include)
#if __has_include("mc.defines.h")
#include "mc.defines.h" /* the manifest's "defines" in a Moddable SDK build */
#endif
#endif

#if SOC_HMAC_SUPPORTED

/* The HMAC peripheral, with the eFuse key block provisioned for it (purpose HMAC_UP). */
#include "esp_hmac.h"

/* Which eFuse key block: manifest "defines": {"cf": {"huk": {"hmac_key": N}}}, default BLOCK_KEY4. */
#ifdef MODDEF_CF_HUK_HMAC_KEY
#define CF_HUK_HMAC_KEY ((hmac_key_id_t)(MODDEF_CF_HUK_HMAC_KEY))
#else
#define CF_HUK_HMAC_KEY HMAC_KEY4
#endif

const char* cf_device_secret_source(void)
{
	return "efuse-hmac";
}

static cf_status deviceSecret(uint8_t secret[CF_DEVICE_SECRET_BYTES])
{
	/* ESP_FAIL when the block's purpose is not HMAC_UP, i.e. the key was never burned. */
	if (esp_hmac_calculate(CF_HUK_HMAC_KEY, CF_DEVICE_SECRET_LABEL, sizeof(CF_DEVICE_SECRET_LABEL) - 1, secret) ==
		ESP_OK)
		return CF_OK;
	cf_wipe(secret, CF_DEVICE_SECRET_BYTES);
	return CF_ERR_UNAVAILABLE;
}

#else /* the original ESP32: no HMAC peripheral */

/* A random 32-byte stand-in for the HUK, made on first use and kept in NVS. */
#include "nvs.h"

#define CF_NVS_NAMESPACE "cose-flow"
#define CF_NVS_KEY "huk"

const char* cf_device_secret_source(void)
{
	return "nvs";
}

static cf_status deviceSecret(uint8_t secret[CF_DEVICE_SECRET_BYTES])
{
	uint8_t huk[32];
	size_t length = sizeof(huk);
	nvs_handle_t handle;
	esp_err_t err;
	cf_status status;
	if (nvs_open(CF_NVS_NAMESPACE, NVS_READWRITE, &handle) != ESP_OK)
		return CF_ERR_UNAVAILABLE;
	err = nvs_get_blob(handle, CF_NVS_KEY, huk, &length);
	if (err == ESP_ERR_NVS_NOT_FOUND) {
		status = cf_random(huk, sizeof(huk));
		if ((status == CF_OK) && ((nvs_set_blob(handle, CF_NVS_KEY, huk, sizeof(huk)) != ESP_OK) ||
			                         (nvs_commit(handle) != ESP_OK)))
			status = CF_ERR_UNAVAILABLE;
	}
	else
		status = ((err == ESP_OK) && (length == sizeof(huk))) ? CF_OK : CF_ERR_UNAVAILABLE;
	nvs_close(handle);
	if (status == CF_OK)
		status = cf_hmac_sha256(huk, sizeof(huk), CF_LABEL(CF_DEVICE_SECRET_LABEL), secret);
	cf_wipe(huk, sizeof(huk));
	return status;
}

#endif /* SOC_HMAC_SUPPORTED */

#else /* the host: a file */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CF_HUK_FILE_VARIABLE "COSE_FLOW_HUK_FILE"
#define CF_HUK_FILE_DEFAULT "cose-flow-huk.bin"
#define CF_HUK_BYTES 32

const char* cf_device_secret_source(void)
{
	return "file";
}

/* Exactly CF_HUK_BYTES bytes, or CF_ERR_UNAVAILABLE (with *missing set when there is no such file). */
static cf_status readHukFile(const char* path, uint8_t huk[CF_HUK_BYTES], int* missing)
{
	uint8_t extra;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*missing = (fd < 0) && (errno == ENOENT);
	if (fd < 0)
		return CF_ERR_UNAVAILABLE;
	while (got < CF_HUK_BYTES) {
		ssize_t n = read(fd, huk + got, CF_HUK_BYTES - got);
		if ((n < 0) && (errno == EINTR))
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if ((got != CF_HUK_BYTES) || (read(fd, &extra, 1) != 0)) {
		close(fd);
		cf_wipe(huk, CF_HUK_BYTES);
		return CF_ERR_UNAVAILABLE;
	}
	close(fd);
	return CF_OK;
}

/* Writes a fresh random HUK under a private name, then links it into place: whoever links first wins. */
static cf_status createHukFile(const char* path)
{
	char temporary[PATH_MAX];
	uint8_t huk[CF_HUK_BYTES];
	size_t put = 0;
	cf_status status;
	int fd;
	if (snprintf(temporary, sizeof(temporary), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(temporary))
		return CF_ERR_UNAVAILABLE;
	fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd < 0)
		return CF_ERR_UNAVAILABLE;
	status = cf_random(huk, sizeof(huk));
	while ((status == CF_OK) && (put < sizeof(huk))) {
		ssize_t n = write(fd, huk + put, sizeof(huk) - put);
		if ((n < 0) && (errno == EINTR))
			continue;
		if (n <= 0)
			status = CF_ERR_UNAVAILABLE;
		else
			put += (size_t)n;
	}
	cf_wipe(huk, sizeof(huk));
	if ((status == CF_OK) && (fsync(fd) != 0))
		status = CF_ERR_UNAVAILABLE;
	if ((close(fd) != 0) && (status == CF_OK))
		status = CF_ERR_UNAVAILABLE;
	if ((status == CF_OK) && (link(temporary, path) != 0) && (errno != EEXIST))
		status = CF_ERR_UNAVAILABLE;
	unlink(temporary);
	return status;
}

static cf_status deviceSecret(uint8_t secret[CF_DEVICE_SECRET_BYTES])
{
	const char* path = getenv(CF_HUK_FILE_VARIABLE);
	uint8_t huk[CF_HUK_BYTES];
	cf_status status;
	int missing;
	if (!path || !*path)
		path = CF_HUK_FILE_DEFAULT;
	status = readHukFile(path, huk, &missing);
	if ((status != CF_OK) && missing) {
		status = createHukFile(path);
		if (status == CF_OK)
			status = readHukFile(path, huk, &missing);
	}
	if (status == CF_OK)
		status = cf_hmac_sha256(huk, sizeof(huk), CF_LABEL(CF_DEVICE_SECRET_LABEL), secret);
	cf_wipe(huk, sizeof(huk));
	return status;
}

#endif /* ESP_PLATFORM */

cf_status cf_device_identity(cf_p256_key* key, uint8_t id[CF_DEVICE_ID_BYTES])
{
	uint8_t secret[CF_DEVICE_SECRET_BYTES];
	cf_status status = deviceSecret(secret);
	if (status == CF_OK)
		status = cf_device_identity_from_secret(secret, key, id);
	cf_wipe(secret, sizeof(secret));
	return status;
}
