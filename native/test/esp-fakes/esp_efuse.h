/* Fake esp_efuse.h (host tests): ESP-IDF's signatures and the ESP32-S3/C3 values. */
#pragma once
#include <stdbool.h>
#include "esp_err.h"
typedef enum {
	EFUSE_BLK0 = 0,
	EFUSE_BLK_KEY0 = 4,
	EFUSE_BLK_KEY1 = 5,
	EFUSE_BLK_KEY2 = 6,
	EFUSE_BLK_KEY3 = 7,
	EFUSE_BLK_KEY4 = 8,
	EFUSE_BLK_KEY5 = 9,
	EFUSE_BLK_KEY_MAX = 10,
	EFUSE_BLK_MAX = 11
} esp_efuse_block_t;
typedef enum {
	ESP_EFUSE_KEY_PURPOSE_USER = 0,
	ESP_EFUSE_KEY_PURPOSE_XTS_AES_128_KEY = 4,
	ESP_EFUSE_KEY_PURPOSE_HMAC_DOWN_ALL = 5,
	ESP_EFUSE_KEY_PURPOSE_HMAC_UP = 8,
	ESP_EFUSE_KEY_PURPOSE_MAX = 16
} esp_efuse_purpose_t;
esp_efuse_purpose_t esp_efuse_get_key_purpose(esp_efuse_block_t block);
bool esp_efuse_get_key_dis_read(esp_efuse_block_t block);
