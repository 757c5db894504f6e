/*
 * The xs-host's own interface between its parts:
 *
 *   main.c       the program: machine, globals, script, job loop, exit status (xs.h only)
 *   platform.c   what XS asks of a platform, and the few host services that need engine
 *                internals (xsAll.h): promise job queue, fxAbort, script loading, heap size
 *   natives.c    the tables that the globals `native(name)` and `Native(name)` look names up in
 *   ../moddable/ the project's native modules, host functions in the Moddable SDK's style
 *                (xsmc.h), listed in those tables
 *
 * Nothing here exposes engine internals: main.c and the native modules see only xs.h / xsmc.h.
 */
#ifndef XS_HOST_H
#define XS_HOST_H

#include "xs.h"

/* Process exit statuses of the host. */
enum {
	XS_HOST_EXIT_OK = 0,
	XS_HOST_EXIT_EXCEPTION = 1, /* uncaught exception or unhandled promise rejection */
	XS_HOST_EXIT_USAGE = 2,     /* bad command line, unreadable script, no machine */
	XS_HOST_EXIT_ABORT = 3,     /* the engine aborted: stack overflow, memory full, ... */
};

/* platform.c */

/* Parses the file at `path` as a script (sloppy, global scope) and runs it; throws on a syntax error. */
extern void xsHostRunScriptFile(xsMachine* the, const char* path);
/* Imports the file at `path` as an ES module; it is evaluated as the promise jobs run (xsHostRunJobs). */
extern void xsHostRunModuleFile(xsMachine* the, const char* path);
/* Freezes the built-ins as the Moddable SDK's linker does after the preload (call once, before any script). */
extern void xsHostFreezeBuiltIns(xsMachine* the);
/* Runs promise jobs until none are left, then reports every promise rejected without a handler. */
extern void xsHostRunJobs(xsMachine* the);
/* Bytes of heap in use: chunks plus slots (call after xsCollectGarbage() for a steady number). */
extern double xsHostHeapUsed(xsMachine* the);
/* The exit status so far; setting keeps the first failure. */
extern int xsHostExitStatus(xsMachine* the);
extern void xsHostFail(xsMachine* the, int status);

/* main.c */

/* Prints `what`, the exception in xsException and its stack to stderr, then clears xsException. */
extern void xsHostReportException(xsMachine* the, const char* what);

/* natives.c */

typedef struct {
	const char* name;      /* the name JavaScript passes to native() */
	xsCallback callback;   /* the host function */
	xsIntegerValue length; /* its `length` (number of declared arguments) */
} xsHostNative;

/* Terminated by an entry whose name is NULL. */
extern const xsHostNative gxHostNatives[];

/* The host destructors that the global `Native(name)` builds classes on. */
typedef struct {
	const char* name;         /* the name JavaScript passes to Native() */
	xsDestructor destructor;  /* called with the host data when an instance is collected */
} xsHostDestructor;

/* Terminated by an entry whose name is NULL. */
extern const xsHostDestructor gxHostDestructors[];

#endif /* XS_HOST_H */
