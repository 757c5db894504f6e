/* Fake esp_hmac.h (host tests): ESP-IDF's signature and key ids (hal/hmac_types.h). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "esp_err.h"
#include "soc/soc_caps.h"
#if !SOC_HMAC_SUPPORTED
#error "HMAC peripheral is not supported for the selected target"
#endif
typedef enum { HMAC_KEY0 = 0, HMAC_KEY1, HMAC_KEY2, HMAC_KEY3, HMAC_KEY4, HMAC_KEY5, HMAC_KEY_MAX = 8 } hmac_key_id_t;
esp_err_t esp_hmac_calculate(hmac_key_id_t key_id, const void* message, size_t message_len, uint8_t* hmac);
