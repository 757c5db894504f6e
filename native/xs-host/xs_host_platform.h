/*
 * Platform header of the project's XS test host (Linux, 64-bit little-endian).
 *
 * XS includes this file through xsPlatform.h when the engine is compiled with
 *   -DINCLUDE_XSPLATFORM -DXSPLATFORM=\"xs_host_platform.h\"
 * It says which of the engine's default platform functions (xsPlatforms.c) are used and which
 * the host supplies itself (platform.c): the machine's platform fields, the promise job queue
 * and fxAbort.
 *
 * mxCESU8 is deliberately NOT defined: the Moddable SDK's device builds keep strings in UTF-8
 * and count their length in code points, and this host must behave the same (xsnap defines
 * mxCESU8, which hides the difference).
 */
#ifndef XS_HOST_PLATFORM_H
#define XS_HOST_PLATFORM_H

#if !defined(__GNUC__) || !(defined(__linux__) || defined(linux))
	#error "the xs-host is built with GCC or Clang on Linux"
#endif
#if !defined(__BYTE_ORDER__) || (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
	#error "the xs-host expects a little-endian machine"
#endif

#undef mxLinux
#define mxLinux 1
#undef mxLittleEndian
#define mxLittleEndian 1
#undef mxBigEndian
#define mxBigEndian 0

#define mxExport extern
#define mxImport extern
#define XS_FUNCTION_NORETURN __attribute__((noreturn))

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <unistd.h>

#define mxUseGCCAtomics 1
#define mxUsePOSIXThreads 1

/* The engine's defaults (xsPlatforms.c) for everything the host does not need to change. */
#define mxUseDefaultBuildKeys 1
#define mxUseDefaultChunkAllocation 1
#define mxUseDefaultSlotAllocation 1
#define mxUseDefaultParseScript 1
#define mxUseDefaultSharedChunks 1
#define mxUseDefaultDebug 1
/*
 * Supplied by platform.c: fxCreateMachinePlatform, fxDeleteMachinePlatform, fxQueuePromiseJobs,
 * fxAbort, and fxFindModule / fxLoadModule (modules are files).
 */

struct xsHostHeldScript; /* platform.c */

/* Fields the engine adds to every machine for the host. */
#define mxMachinePlatform \
	void* waiterCondition; /* Atomics.wait (xsAtomics.c with mxUseDefaultSharedChunks) */ \
	void* waiterData; \
	void* waiterLink; \
	int promiseJobs; /* set by fxQueuePromiseJobs, cleared when the queue is run */ \
	int exitStatus;  /* the process exit status the host will return (0 = success) */ \
	struct xsHostHeldScript* heldScripts; /* parsed scripts the engine is running (platform.c) */

#endif /* XS_HOST_PLATFORM_H */
