/* Fake soc/soc_caps.h (host tests): -DCF_FAKE_HMAC=1 is a chip with the HMAC peripheral (S3, C3...), without it the original ESP32. */
#pragma once
#if defined(CF_FAKE_HMAC) && CF_FAKE_HMAC
#define SOC_HMAC_SUPPORTED 1
#define SOC_EFUSE_KEY_PURPOSE_FIELD 1
#endif
