/*
 * The host functions that JavaScript reaches with `native(name)`, as the Moddable SDK binds
 * `@ "name"` declarations at link time. A native module adds its entries here; its C file sees
 * XS only through xsmc.h.
 */
#include "host.h"

/* modules/random.c */
extern void xs_host_get_random_values(xsMachine* the);

const xsHostNative gxHostNatives[] = {
	{ "xs_host_get_random_values", xs_host_get_random_values, 1 },
	{ NULL, NULL, 0 },
};
