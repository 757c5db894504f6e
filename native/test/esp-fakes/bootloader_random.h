/* Fake bootloader_random.h (host tests). */
#pragma once
#include <stddef.h>
void bootloader_random_enable(void);
void bootloader_random_disable(void);
