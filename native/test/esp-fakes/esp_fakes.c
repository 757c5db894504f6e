/*
 * The fake ESP-IDF of esp_fakes.h: in-memory NVS and eFuse, a recording RNG, HMAC peripheral and
 * log. Every call prints one "call ..." line to stdout, in order, for the test to read.
 */
#include "esp_fakes.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "bootloader_random.h"
#include "cf_crypto.h"
#include "esp_err.h"
#include "esp_random.h"
#include "esp_wifi.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "soc/soc_caps.h"
#if SOC_HMAC_SUPPORTED
#include "esp_efuse.h"
#include "esp_hmac.h"
#endif

#define MAX_NAME 32
#define MAX_VALUE 64
#define MAX_ENTRIES 32
#define MAX_HANDLES 16

/* ---- RNG and its entropy source ---- */

int fake_random_calls, fake_random_calls_without_entropy, fake_bootloader_random_enabled;
int fake_unsafe_enables;
static int wifiMode = -1;

void fake_wifi_set(int mode)
{
	wifiMode = mode;
}

esp_err_t esp_wifi_get_mode(wifi_mode_t* mode)
{
	printf("call esp_wifi_get_mode\n");
	if (wifiMode < 0)
		return ESP_ERR_WIFI_NOT_INIT;
	*mode = (wifi_mode_t)wifiMode;
	return ESP_OK;
}

static int radioRunning(void)
{
	return wifiMode > 0;
}

void bootloader_random_enable(void)
{
	printf("call bootloader_random_enable radio=%d\n", radioRunning());
	if (radioRunning())
		fake_unsafe_enables++;
	fake_bootloader_random_enabled = 1;
}

void bootloader_random_disable(void)
{
	printf("call bootloader_random_disable\n");
	fake_bootloader_random_enabled = 0;
}

void esp_fill_random(void* buf, size_t len)
{
	size_t got = 0;
	int entropy = fake_bootloader_random_enabled || radioRunning();
	printf("call esp_fill_random %zu entropy=%d\n", len, entropy);
	fake_random_calls++;
	if (!entropy)
		fake_random_calls_without_entropy++;
	while (got < len) {
		ssize_t n = getrandom((uint8_t*)buf + got, len - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
}

uint32_t esp_random(void)
{
	uint32_t value;
	esp_fill_random(&value, sizeof(value));
	return value;
}

/* ---- the Moddable SDK's log ---- */

void modLog_transmit(const char* msg)
{
	printf("log %s\n", msg);
}

/* ---- eFuse and the HMAC peripheral ---- */

static int efusePurpose[6], efuseReadProtected[6];

void fake_efuse_set(int key, int purpose, int readProtected)
{
	if ((key >= 0) && (key < 6)) {
		efusePurpose[key] = purpose;
		efuseReadProtected[key] = readProtected;
	}
}

#if SOC_HMAC_SUPPORTED
static int efuseKey(esp_efuse_block_t block)
{
	int key = (int)block - (int)EFUSE_BLK_KEY0;
	return ((key >= 0) && (key < 6)) ? key : -1;
}

esp_efuse_purpose_t esp_efuse_get_key_purpose(esp_efuse_block_t block)
{
	int key = efuseKey(block);
	printf("call esp_efuse_get_key_purpose block=%d\n", (int)block);
	return (key < 0) ? ESP_EFUSE_KEY_PURPOSE_MAX : (esp_efuse_purpose_t)efusePurpose[key];
}

bool esp_efuse_get_key_dis_read(esp_efuse_block_t block)
{
	int key = efuseKey(block);
	printf("call esp_efuse_get_key_dis_read block=%d\n", (int)block);
	return (key >= 0) && efuseReadProtected[key];
}

/* The HUK of key block N is 32 bytes of 0xA0 + N; the peripheral computes only with HMAC_UP. */
esp_err_t esp_hmac_calculate(hmac_key_id_t key_id, const void* message, size_t message_len, uint8_t* hmac)
{
	uint8_t huk[32];
	int key = (int)key_id;
	printf("call esp_hmac_calculate key=%d\n", key);
	if ((key < 0) || (key >= 6) || (efusePurpose[key] != ESP_EFUSE_KEY_PURPOSE_HMAC_UP))
		return ESP_FAIL;
	memset(huk, 0xA0 + key, sizeof(huk));
	return (cf_hmac_sha256(huk, sizeof(huk), message, message_len, hmac) == CF_OK) ? ESP_OK : ESP_FAIL;
}
#endif

/* ---- NVS ---- */

typedef struct {
	char partition[MAX_NAME], space[MAX_NAME], key[MAX_NAME];
	uint8_t value[MAX_VALUE];
	size_t length;
	int used;
} Entry;

typedef struct {
	char partition[MAX_NAME], space[MAX_NAME];
	int readOnly, open;
} Handle;

static Entry entries[MAX_ENTRIES];
static Handle handles[MAX_HANDLES];
static char spaces[MAX_ENTRIES][2][MAX_NAME];
static int spaceCount;
static char missingPartitions[4][MAX_NAME];
static char initialized[4][MAX_NAME] = {"nvs"}; /* the SDK's start-up calls nvs_flash_init() */
static int failSet;

static Entry* find(const char* partition, const char* space, const char* key)
{
	for (int i = 0; i < MAX_ENTRIES; i++)
		if (entries[i].used && !strcmp(entries[i].partition, partition) && !strcmp(entries[i].space, space) &&
			!strcmp(entries[i].key, key))
			return &entries[i];
	return NULL;
}

static int hasSpace(const char* partition, const char* space)
{
	for (int i = 0; i < spaceCount; i++)
		if (!strcmp(spaces[i][0], partition) && !strcmp(spaces[i][1], space))
			return 1;
	return 0;
}

static void addSpace(const char* partition, const char* space)
{
	if (!hasSpace(partition, space) && (spaceCount < MAX_ENTRIES)) {
		snprintf(spaces[spaceCount][0], MAX_NAME, "%s", partition);
		snprintf(spaces[spaceCount][1], MAX_NAME, "%s", space);
		spaceCount++;
	}
}

static int inList(char list[4][MAX_NAME], const char* name)
{
	for (int i = 0; i < 4; i++)
		if (list[i][0] && !strcmp(list[i], name))
			return 1;
	return 0;
}

static void setInList(char list[4][MAX_NAME], const char* name, int on)
{
	for (int i = 0; i < 4; i++) {
		if (!on && list[i][0] && !strcmp(list[i], name))
			list[i][0] = 0;
		if (on && !list[i][0]) {
			snprintf(list[i], MAX_NAME, "%s", name);
			return;
		}
	}
}

static void put(const char* partition, const char* space, const char* key, const void* value, size_t length)
{
	Entry* entry = find(partition, space, key);
	for (int i = 0; !entry && (i < MAX_ENTRIES); i++)
		if (!entries[i].used)
			entry = &entries[i];
	if (!entry || (length > MAX_VALUE))
		return;
	entry->used = 1;
	snprintf(entry->partition, MAX_NAME, "%s", partition);
	snprintf(entry->space, MAX_NAME, "%s", space);
	snprintf(entry->key, MAX_NAME, "%s", key);
	memcpy(entry->value, value, length);
	entry->length = length;
	addSpace(partition, space);
}

void fake_nvs_put(const char* partition, const char* space, const char* key, const uint8_t* value, size_t length)
{
	put(partition, space, key, value, length);
}

int fake_nvs_get(const char* partition, const char* space, const char* key, uint8_t* value, size_t capacity)
{
	Entry* entry = find(partition, space, key);
	if (!entry || (entry->length > capacity))
		return -1;
	memcpy(value, entry->value, entry->length);
	return (int)entry->length;
}

void fake_nvs_partition_exists(const char* partition, int exists)
{
	setInList(missingPartitions, partition, !exists);
}

void fake_nvs_fail_set(int n)
{
	failSet = n;
}

void fake_nvs_dump(void)
{
	for (int i = 0; i < MAX_ENTRIES; i++) {
		if (!entries[i].used)
			continue;
		printf("nvs %s/%s/%s ", entries[i].partition, entries[i].space, entries[i].key);
		for (size_t j = 0; j < entries[i].length; j++)
			printf("%02x", entries[i].value[j]);
		printf("\n");
	}
}

esp_err_t nvs_flash_init(void)
{
	return nvs_flash_init_partition(NVS_DEFAULT_PART_NAME);
}

esp_err_t nvs_flash_init_partition(const char* partition_label)
{
	esp_err_t err = ESP_OK;
	if (inList(missingPartitions, partition_label))
		err = ESP_ERR_NOT_FOUND;
	else if (!inList(initialized, partition_label))
		setInList(initialized, partition_label, 1);
	printf("call nvs_flash_init_partition %s -> %d\n", partition_label, err);
	return err;
}

esp_err_t nvs_open_from_partition(const char* part_name, const char* namespace_name, nvs_open_mode_t open_mode,
	nvs_handle_t* out_handle)
{
	esp_err_t err = ESP_OK;
	int i;
	if (!inList(initialized, part_name))
		err = ESP_ERR_NVS_NOT_INITIALIZED;
	else if ((open_mode == NVS_READONLY) && !hasSpace(part_name, namespace_name))
		err = ESP_ERR_NVS_NOT_FOUND;
	for (i = 0; (err == ESP_OK) && (i < MAX_HANDLES) && handles[i].open; i++)
		;
	if ((err == ESP_OK) && (i == MAX_HANDLES))
		err = ESP_ERR_NO_MEM;
	if (err == ESP_OK) {
		if (open_mode == NVS_READWRITE)
			addSpace(part_name, namespace_name);
		handles[i].open = 1;
		handles[i].readOnly = (open_mode == NVS_READONLY);
		snprintf(handles[i].partition, MAX_NAME, "%s", part_name);
		snprintf(handles[i].space, MAX_NAME, "%s", namespace_name);
		*out_handle = (nvs_handle_t)(i + 1);
	}
	printf("call nvs_open %s/%s %s -> %d\n", part_name, namespace_name, (open_mode == NVS_READONLY) ? "ro" : "rw", err);
	return err;
}

esp_err_t nvs_open(const char* namespace_name, nvs_open_mode_t open_mode, nvs_handle_t* out_handle)
{
	return nvs_open_from_partition(NVS_DEFAULT_PART_NAME, namespace_name, open_mode, out_handle);
}

static Handle* handleOf(nvs_handle_t handle)
{
	return ((handle >= 1) && (handle <= MAX_HANDLES) && handles[handle - 1].open) ? &handles[handle - 1] : NULL;
}

esp_err_t nvs_get_blob(nvs_handle_t handle, const char* key, void* out_value, size_t* length)
{
	Handle* h = handleOf(handle);
	Entry* entry = h ? find(h->partition, h->space, key) : NULL;
	esp_err_t err = !h ? ESP_ERR_INVALID_ARG : !entry ? ESP_ERR_NVS_NOT_FOUND : ESP_OK;
	if ((err == ESP_OK) && out_value && (*length < entry->length))
		err = ESP_ERR_NVS_INVALID_LENGTH;
	if (err == ESP_OK) {
		if (out_value)
			memcpy(out_value, entry->value, entry->length);
		*length = entry->length;
	}
	printf("call nvs_get_blob %s/%s/%s -> %d\n", h ? h->partition : "?", h ? h->space : "?", key, err);
	return err;
}

esp_err_t nvs_set_blob(nvs_handle_t handle, const char* key, const void* value, size_t length)
{
	Handle* h = handleOf(handle);
	esp_err_t err = !h ? ESP_ERR_INVALID_ARG : h->readOnly ? ESP_ERR_INVALID_STATE : ESP_OK;
	if ((err == ESP_OK) && failSet && (--failSet == 0))
		err = ESP_FAIL;
	if (err == ESP_OK)
		put(h->partition, h->space, key, value, length);
	printf("call nvs_set_blob %s/%s/%s -> %d\n", h ? h->partition : "?", h ? h->space : "?", key, err);
	return err;
}

esp_err_t nvs_erase_key(nvs_handle_t handle, const char* key)
{
	Handle* h = handleOf(handle);
	Entry* entry = h ? find(h->partition, h->space, key) : NULL;
	esp_err_t err = !h			  ? ESP_ERR_INVALID_ARG
					: h->readOnly ? ESP_ERR_INVALID_STATE
					: !entry	  ? ESP_ERR_NVS_NOT_FOUND
								  : ESP_OK;
	if (err == ESP_OK)
		memset(entry, 0, sizeof(*entry));
	printf("call nvs_erase_key %s/%s/%s -> %d\n", h ? h->partition : "?", h ? h->space : "?", key, err);
	return err;
}

esp_err_t nvs_commit(nvs_handle_t handle)
{
	Handle* h = handleOf(handle);
	printf("call nvs_commit %s/%s\n", h ? h->partition : "?", h ? h->space : "?");
	return h ? ESP_OK : ESP_ERR_INVALID_ARG;
}

void nvs_close(nvs_handle_t handle)
{
	Handle* h = handleOf(handle);
	printf("call nvs_close %s/%s\n", h ? h->partition : "?", h ? h->space : "?");
	if (h)
		h->open = 0;
}
