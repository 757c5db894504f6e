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
#include "sdkconfig.h"
#include "soc/soc_caps.h"
#if defined(__has_include)
#if __has_include("mc.defines.h")
#include "mc.defines.h" /* the manifest's "defines" in a Moddable SDK build */
#endif
#endif

/*
 * A refusal is logged the Moddable way: modLog_transmit (the SDK's debugger library: to xsbug in a
 * debug build, to the serial console otherwise). ESP_LOGE would print nothing: the SDK's sdkconfig
 * sets CONFIG_LOG_MAXIMUM_LEVEL to 0.
 */
extern void modLog_transmit(const char* msg);

#if SOC_HMAC_SUPPORTED

/* The HMAC peripheral, with the eFuse key block provisioned for it (purpose HMAC_UP). */
#include <stdio.h>

#include "esp_efuse.h"
#include "esp_hmac.h"

/* Which eFuse key block: manifest "defines": {"cf": {"huk": {"hmac_key": N}}}, default BLOCK_KEY4. */
#ifndef MODDEF_CF_HUK_HMAC_KEY
#define MODDEF_CF_HUK_HMAC_KEY 4
#endif
_Static_assert(((MODDEF_CF_HUK_HMAC_KEY) >= 0) && ((MODDEF_CF_HUK_HMAC_KEY) <= 5),
	"manifest define cf.huk.hmac_key (MODDEF_CF_HUK_HMAC_KEY) must be an eFuse key block 0..5");
#define CF_HUK_HMAC_KEY ((hmac_key_id_t)(HMAC_KEY0 + (MODDEF_CF_HUK_HMAC_KEY)))
#define CF_HUK_EFUSE_BLOCK ((esp_efuse_block_t)(EFUSE_BLK_KEY0 + (MODDEF_CF_HUK_HMAC_KEY)))

const char* cf_device_secret_source(void)
{
	return "efuse-hmac";
}

static void logRefusal(const char* why)
{
	char line[200];
	snprintf(line, sizeof(line), "cose-flow: device key refused: eFuse BLOCK_KEY%d %s", (int)(MODDEF_CF_HUK_HMAC_KEY),
		why);
	modLog_transmit(line);
}

/*
 * Only a block burned for the HMAC peripheral and read-protected: a block with another purpose is
 * some other key (flash encryption, secure boot, a user key), and a readable one is a HUK that
 * software can copy out.
 */
static cf_status checkKeyBlock(void)
{
	if (esp_efuse_get_key_purpose(CF_HUK_EFUSE_BLOCK) != ESP_EFUSE_KEY_PURPOSE_HMAC_UP) {
		logRefusal("does not have the purpose HMAC_UP (not provisioned, or another key)");
		return CF_ERR_UNAVAILABLE;
	}
	if (!esp_efuse_get_key_dis_read(CF_HUK_EFUSE_BLOCK)) {
		logRefusal("is readable by software (read protection not set): the HUK is not secret");
		return CF_ERR_UNAVAILABLE;
	}
	return CF_OK;
}

static cf_status deviceSecret(uint8_t secret[CF_DEVICE_SECRET_BYTES])
{
	if (checkKeyBlock() != CF_OK)
		return CF_ERR_UNAVAILABLE;
	if (esp_hmac_calculate(CF_HUK_HMAC_KEY, CF_DEVICE_SECRET_LABEL, sizeof(CF_DEVICE_SECRET_LABEL) - 1, secret) ==
		ESP_OK)
		return CF_OK;
	cf_wipe(secret, CF_DEVICE_SECRET_BYTES);
	logRefusal("failed in the HMAC peripheral");
	return CF_ERR_UNAVAILABLE;
}

#else /* the original ESP32: no HMAC peripheral */

/*
 * A random 32-byte stand-in for the HUK, made on first use and kept in an NVS partition of its own
 * (CF_NVS_PARTITION, in native/partitions.csv). The SDK's Preference and key-value storage open
 * namespaces of the default partition only, and any namespace name there can be made by
 * JavaScript, so the secret is kept out of that partition altogether. Builds before this one kept
 * it in the default partition, namespace "cose-flow" (the app's Preference domain), key "huk": it
 * is moved once (copied, read back, then erased there).
 */
#include "bootloader_random.h"
#include "esp_wifi.h"
#include "nvs.h"
#if CONFIG_BT_ENABLED
#include "esp_bt.h"
#endif
#include "nvs_flash.h"

#define CF_NVS_PARTITION "cf_huk"
#define CF_NVS_NAMESPACE "cose-flow"
#define CF_NVS_KEY "huk"
#define CF_NVS_LEGACY_NAMESPACE "cose-flow" /* in the default partition ("nvs") */
#define CF_HUK_BYTES 32

const char* cf_device_secret_source(void)
{
	return "nvs";
}

static cf_status initPartition(void)
{
	static int initialized = 0;
	esp_err_t err;
	if (initialized)
		return CF_OK;
#if CONFIG_NVS_ENCRYPTION
	{
		/* The keys nvs_flash_init made for the default partition (nvs_keys, flash-encrypted). */
		nvs_sec_cfg_t cfg;
		nvs_sec_scheme_t* scheme = nvs_flash_get_default_security_scheme();
		err = scheme ? nvs_flash_read_security_cfg_v2(scheme, &cfg) : ESP_ERR_NOT_FOUND;
		if (err == ESP_OK)
			err = nvs_flash_secure_init_partition(CF_NVS_PARTITION, &cfg);
		cf_wipe(&cfg, sizeof(cfg));
	}
#else
	err = nvs_flash_init_partition(CF_NVS_PARTITION);
#endif
	if (err == ESP_ERR_NOT_FOUND) {
		modLog_transmit("cose-flow: device key refused: no NVS partition \"" CF_NVS_PARTITION
						"\" (build with native/partitions.csv)");
		return CF_ERR_UNAVAILABLE;
	}
	if (err != ESP_OK) {
		modLog_transmit("cose-flow: device key refused: NVS partition \"" CF_NVS_PARTITION "\" cannot be opened");
		return CF_ERR_UNAVAILABLE;
	}
	initialized = 1;
	return CF_OK;
}

/* ESP_OK with the 32 bytes, ESP_ERR_NVS_NOT_FOUND when absent, another error when unreadable. */
static esp_err_t readHuk(nvs_handle_t handle, uint8_t huk[CF_HUK_BYTES])
{
	size_t length = CF_HUK_BYTES;
	esp_err_t err = nvs_get_blob(handle, CF_NVS_KEY, huk, &length);
	if ((err == ESP_OK) && (length != CF_HUK_BYTES))
		err = ESP_ERR_INVALID_SIZE;
	if (err != ESP_OK)
		cf_wipe(huk, CF_HUK_BYTES);
	return err;
}

/* Writes, commits and reads back. */
static cf_status writeHuk(nvs_handle_t handle, const uint8_t huk[CF_HUK_BYTES])
{
	uint8_t check[CF_HUK_BYTES];
	cf_status status = CF_ERR_UNAVAILABLE;
	if ((nvs_set_blob(handle, CF_NVS_KEY, huk, CF_HUK_BYTES) == ESP_OK) && (nvs_commit(handle) == ESP_OK) &&
		(readHuk(handle, check) == ESP_OK) && (memcmp(check, huk, CF_HUK_BYTES) == 0))
		status = CF_OK;
	cf_wipe(check, sizeof(check));
	return status;
}

/*
 * The old copy in the app's Preference domain: ESP_OK with its bytes, or ESP_ERR_NVS_NOT_FOUND.
 * Anything there that is not a 32-byte blob is the app's own data, not a secret of ours.
 */
static esp_err_t readLegacyHuk(uint8_t huk[CF_HUK_BYTES])
{
	nvs_handle_t handle;
	esp_err_t err = nvs_open(CF_NVS_LEGACY_NAMESPACE, NVS_READONLY, &handle);
	if (err != ESP_OK)
		return ESP_ERR_NVS_NOT_FOUND;
	err = readHuk(handle, huk);
	nvs_close(handle);
	return (err == ESP_OK) ? ESP_OK : ESP_ERR_NVS_NOT_FOUND;
}

/* Erases the old copy if it is still there and is this secret (an earlier erase may have failed). */
static void eraseLegacyHuk(const uint8_t huk[CF_HUK_BYTES])
{
	uint8_t old[CF_HUK_BYTES];
	nvs_handle_t handle;
	if (readLegacyHuk(old) == ESP_OK) {
		if ((memcmp(old, huk, CF_HUK_BYTES) == 0) &&
			(nvs_open(CF_NVS_LEGACY_NAMESPACE, NVS_READWRITE, &handle) == ESP_OK)) {
			if ((nvs_erase_key(handle, CF_NVS_KEY) != ESP_OK) || (nvs_commit(handle) != ESP_OK))
				modLog_transmit("cose-flow: device key: the old copy in NVS namespace \"" CF_NVS_LEGACY_NAMESPACE
								"\" could not be erased; retried at the next start");
			nvs_close(handle);
		}
		cf_wipe(old, sizeof(old));
	}
}

/*
 * A new secret. esp_fill_random is only a true RNG while an entropy source runs: the RF subsystem
 * (Wi-Fi/BT, which the SDK starts only when `ssid` is configured) or the SAR ADC noise source that
 * bootloader_random_enable() turns on. This runs once in the device's life, at its first start.
 */
/*
 * Whether the radio runs: Wi-Fi initialised in any mode (the SDK initialises and starts it together,
 * before main, when `ssid` is configured) or the Bluetooth controller enabled. Then esp_fill_random
 * is already a true RNG, and bootloader_random_enable() must not be called: ESP-IDF documents it as
 * unsafe while anything else uses the RF subsystem or the ADC (on the ESP32 it drives SAR ADC2 and
 * resets I2S0, which Wi-Fi shares).
 */
static int radioRunning(void)
{
#if CONFIG_ESP_WIFI_ENABLED
	wifi_mode_t mode;
	if ((esp_wifi_get_mode(&mode) == ESP_OK) && (mode != WIFI_MODE_NULL))
		return 1;
#endif
#if CONFIG_BT_ENABLED
	if (esp_bt_controller_get_status() == ESP_BT_CONTROLLER_STATUS_ENABLED)
		return 1;
#endif
	return 0;
}

static cf_status generateHuk(uint8_t huk[CF_HUK_BYTES])
{
	cf_status status;
	if (radioRunning())
		return cf_random(huk, CF_HUK_BYTES);
	bootloader_random_enable();
	status = cf_random(huk, CF_HUK_BYTES);
	bootloader_random_disable();
	return status;
}

static cf_status deviceSecret(uint8_t secret[CF_DEVICE_SECRET_BYTES])
{
	uint8_t huk[CF_HUK_BYTES];
	nvs_handle_t handle;
	esp_err_t err;
	cf_status status = initPartition();
	if (status != CF_OK)
		return status;
	if (nvs_open_from_partition(CF_NVS_PARTITION, CF_NVS_NAMESPACE, NVS_READWRITE, &handle) != ESP_OK) {
		modLog_transmit("cose-flow: device key refused: NVS partition \"" CF_NVS_PARTITION "\" cannot be opened");
		return CF_ERR_UNAVAILABLE;
	}
	err = readHuk(handle, huk);
	if (err == ESP_OK)
		status = CF_OK;
	else if (err == ESP_ERR_NVS_NOT_FOUND) {
		/* First start of this firmware: move the old copy, or make the secret. */
		status = (readLegacyHuk(huk) == ESP_OK) ? CF_OK : generateHuk(huk);
		if ((status == CF_OK) && (writeHuk(handle, huk) != CF_OK)) {
			modLog_transmit("cose-flow: device key refused: the secret could not be written to NVS partition \""
							CF_NVS_PARTITION "\"");
			nvs_erase_key(handle, CF_NVS_KEY);
			nvs_commit(handle);
			status = CF_ERR_UNAVAILABLE;
		}
	}
	else {
		modLog_transmit(
			"cose-flow: device key refused: the secret in NVS partition \"" CF_NVS_PARTITION "\" is unreadable");
		status = CF_ERR_UNAVAILABLE;
	}
	nvs_close(handle);
	if (status == CF_OK) {
		eraseLegacyHuk(huk);
		status = cf_hmac_sha256(huk, sizeof(huk), CF_LABEL(CF_DEVICE_SECRET_LABEL), secret);
	}
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
