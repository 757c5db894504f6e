/*
 * xs-host: runs one script file in the XS engine, the way the device runs the project's code.
 *
 *   xs-host [--module] [--stack SLOTS] [--no-freeze] FILE [ARG...]
 *
 * It installs its globals, freezes the built-ins as the Moddable SDK's linker does on the device
 * (unless --no-freeze), evaluates FILE as a plain script (e.g. an esbuild IIFE bundle) or, with
 * --module, imports it as an ES module (e.g. an esbuild ESM bundle, as the device runs its
 * modules), runs the promise job queue until it is empty, and exits with 0, or with 1 after an
 * uncaught exception or an unhandled promise rejection (message and stack on stderr), 2 for a bad
 * command line or an unreadable script, 3 when the engine aborts (stack overflow, memory full, ...).
 *
 * Globals besides the language's own:
 *   print(...values)              values as strings, separated by spaces, and a newline, on stdout
 *   trace(text)                   the text as it is on stdout, as the Moddable SDK's trace
 *   native(name)                  the host function registered under `name` in natives.c
 *   Native(name)                  a class whose instances are host objects with the destructor
 *                                 registered under `name` in natives.c (`class X extends Native(…)`)
 *   crypto.getRandomValues(view)  fills an integer typed array from getrandom(2)
 *   gc()                          a full garbage collection
 *   heapUsed()                    bytes of heap in use (chunks + slots); call gc() first
 *   scriptArgs                    the ARG strings
 *   TextEncoder, TextDecoder      the Moddable SDK's modules (the device application has them too)
 *
 * This file sees XS only through xs.h; engine internals live in platform.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

/* From the Moddable SDK's modules/data/text (compiled with the engine). */
extern void modInstallTextEncoder(xsMachine* the);
extern void modInstallTextDecoder(xsMachine* the);

/* Stricter than the device application's creation stack (2048 in manifest.json; the protocol code
   alone runs in 1024, 384 and 512 overflow), so what passes here has headroom on the device. */
#define DEFAULT_STACK_SLOTS 1024

static void xs_print(xsMachine* the);
static void xs_trace(xsMachine* the);
static void xs_native(xsMachine* the);
static void xs_Native(xsMachine* the);
static void xs_gc(xsMachine* the);
static void xs_heapUsed(xsMachine* the);

static const xsHostNative* findNative(const char* name)
{
	const xsHostNative* entry;
	for (entry = gxHostNatives; entry->name; entry++) {
		if (!strcmp(entry->name, name))
			return entry;
	}
	return NULL;
}

static const xsHostDestructor* findDestructor(const char* name)
{
	const xsHostDestructor* entry;
	for (entry = gxHostDestructors; entry->name; entry++) {
		if (!strcmp(entry->name, name))
			return entry;
	}
	return NULL;
}

static void xs_print(xsMachine* the)
{
	xsIntegerValue count = xsToInteger(xsArgc);
	xsIntegerValue i;
	for (i = 0; i < count; i++) {
		if (i > 0)
			fputc(' ', stdout);
		fputs(xsToString(xsArg(i)), stdout);
	}
	fputc('\n', stdout);
}

static void xs_trace(xsMachine* the)
{
	if (xsToInteger(xsArgc) > 0)
		fputs(xsToString(xsArg(0)), stdout);
}

static void xs_native(xsMachine* the)
{
	const xsHostNative* entry;
	if ((xsToInteger(xsArgc) < 1) || (xsTypeOf(xsArg(0)) != xsStringType))
		xsTypeError("native: expected the name of a host function");
	entry = findNative(xsToString(xsArg(0)));
	if (!entry)
		xsReferenceError("native: no host function named \"%s\"", xsToString(xsArg(0)));
	xsResult = xsNewHostFunction(entry->callback, entry->length);
}

/*
 * The constructor of a Native class: a base class constructor, so only callable with `new` (or
 * through `super()`); the instance is a host object of `new.target`'s prototype, which carries
 * the destructor down from the Native class's prototype (fxNewHostInstance copies it). Its host
 * data is NULL until a native function of the class sets it, as in the Moddable SDK.
 */
static void xs_native_constructor(xsMachine* the)
{
	if (xsTypeOf(xsTarget) == xsUndefinedType)
		xsTypeError("Native: a class constructor cannot be called without new");
	xsResult = xsGet(xsTarget, xsID("prototype"));
	xsResult = xsNewHostInstance(xsResult);
}

/*
 * Native(name): what xsc makes of `class @ "name" {}`, a class whose prototype is a host object
 * with the destructor `name`, so that every instance (of it or of a class extending it) is a host
 * object that XS calls the destructor for when it is collected.
 */
static void xs_Native(xsMachine* the)
{
	const xsHostDestructor* entry;
	if ((xsToInteger(xsArgc) < 1) || (xsTypeOf(xsArg(0)) != xsStringType))
		xsTypeError("Native: expected the name of a host destructor");
	entry = findDestructor(xsToString(xsArg(0)));
	if (!entry)
		xsReferenceError("Native: no host destructor named \"%s\"", xsToString(xsArg(0)));
	xsResult = xsNewHostObject(entry->destructor);
	xsResult = xsNewHostConstructor(xs_native_constructor, 0, xsResult);
}

static void xs_gc(xsMachine* the)
{
	xsCollectGarbage();
}

static void xs_heapUsed(xsMachine* the)
{
	xsResult = xsNumber(xsHostHeapUsed(the));
}

void xsHostReportException(xsMachine* machine, const char* what)
{
	xsBeginHost(machine);
	{
		xsVars(2);
		xsVar(0) = xsException;
		xsException = xsUndefined;
		fprintf(stderr, "%s: ", what);
		xsTry {
			if (xsTypeOf(xsVar(0)) == xsReferenceType)
				xsVar(1) = xsGet(xsVar(0), xsID("stack"));
			/* An Error's stack starts with its name and message; anything else prints as a string. */
			if (xsTypeOf(xsVar(1)) == xsStringType)
				fputs(xsToString(xsVar(1)), stderr);
			else
				fputs(xsToString(xsVar(0)), stderr);
			fputc('\n', stderr);
		}
		xsCatch {
			xsException = xsUndefined;
			fputs("(a value that cannot be converted to a string)\n", stderr);
		}
	}
	xsEndHost(machine);
}

static void defineFunction(xsMachine* the, xsSlot* target, const char* name, xsCallback callback, xsIntegerValue length)
{
	xsVar(1) = xsNewHostFunction(callback, length);
	xsDefine(*target, xsID(name), xsVar(1), xsDontEnum);
}

/* Uses xsVar(0) and xsVar(1) of the caller's frame. */
static void installGlobals(xsMachine* the, int argc, char* argv[])
{
	const xsHostNative* random;
	int i;
	defineFunction(the, &xsGlobal, "print", xs_print, 0);
	defineFunction(the, &xsGlobal, "trace", xs_trace, 1);
	defineFunction(the, &xsGlobal, "native", xs_native, 1);
	defineFunction(the, &xsGlobal, "Native", xs_Native, 1);
	defineFunction(the, &xsGlobal, "gc", xs_gc, 0);
	defineFunction(the, &xsGlobal, "heapUsed", xs_heapUsed, 0);

	random = findNative("xs_cf_get_random_values");
	if (!random)
		xsUnknownError("natives.c has no xs_cf_get_random_values");
	xsVar(0) = xsNewObject();
	defineFunction(the, &xsVar(0), "getRandomValues", random->callback, random->length);
	xsDefine(xsGlobal, xsID("crypto"), xsVar(0), xsDontEnum);

	xsVar(0) = xsNewArray(0);
	for (i = 0; i < argc; i++) {
		xsVar(1) = xsString(argv[i]);
		xsSetIndex(xsVar(0), i, xsVar(1));
	}
	xsDefine(xsGlobal, xsID("scriptArgs"), xsVar(0), xsDontEnum);

	modInstallTextEncoder(the);
	modInstallTextDecoder(the);
}

static int run(xsMachine* machine, const char* path, int module, int freeze, int argc, char* argv[])
{
	/* The outermost jump frame: fxAbort ends a run with fxExitToHost, which lands here. */
	xsJump outermost;
	outermost.nextJump = machine->firstJump;
	outermost.stack = machine->stack;
	outermost.scope = machine->scope;
	outermost.frame = machine->frame;
	outermost.environment = NULL;
	outermost.code = machine->code;
	outermost.flag = 0;
	machine->firstJump = &outermost;
	if (setjmp(outermost.buffer) == 0) {
		xsBeginHost(machine);
		{
			xsVars(2); /* first: nothing may be allocated in a host frame before its variables */
			installGlobals(the, argc, argv);
			if (freeze)
				xsHostFreezeBuiltIns(the);
			xsTry {
				if (module)
					xsHostRunModuleFile(the, path);
				else
					xsHostRunScriptFile(the, path);
			}
			xsCatch {
				xsHostReportException(the, "uncaught exception");
				xsHostFail(the, XS_HOST_EXIT_EXCEPTION);
			}
			if (xsHostExitStatus(the) == XS_HOST_EXIT_OK)
				xsHostRunJobs(the);
		}
		xsEndHost(machine);
	}
	machine->stack = outermost.stack;
	machine->scope = outermost.scope;
	machine->frame = outermost.frame;
	machine->code = outermost.code;
	machine->firstJump = outermost.nextJump;
	return xsHostExitStatus(machine);
}

static int usage(FILE* out, int status)
{
	fprintf(out,
		"usage: xs-host [--module] [--stack SLOTS] [--no-freeze] FILE [ARG...]\n"
		"  Runs FILE in XS, then its promise jobs until none are left.\n"
		"  --module       import FILE as an ES module (default: run it as a script)\n"
		"  --stack SLOTS  the machine's stack in slots (default %d, as on the device)\n"
		"  --no-freeze    leave the built-ins unfrozen (default: frozen, as on the device)\n"
		"  Exit status: 0 ok, 1 uncaught exception or unhandled rejection, 2 usage, 3 XS abort.\n",
		DEFAULT_STACK_SLOTS);
	return status;
}

int main(int argc, char* argv[])
{
	xsCreation creation = {
		8 * 1024 * 1024,     /* initialChunkSize (bytes) */
		2 * 1024 * 1024,     /* incrementalChunkSize */
		256 * 1024,          /* initialHeapCount (slots) */
		64 * 1024,           /* incrementalHeapCount */
		DEFAULT_STACK_SLOTS, /* stackCount */
		8 * 1024,            /* initialKeyCount */
		4 * 1024,            /* incrementalKeyCount */
		1993,                /* nameModulo */
		127,                 /* symbolModulo */
		8 * 1024 * 1024,     /* parserBufferSize */
		1993,                /* parserTableModulo */
		0,                   /* staticSize */
	};
	xsMachine* machine;
	int argi = 1;
	int module = 0;
	int freeze = 1;
	int status;

	while ((argi < argc) && (argv[argi][0] == '-') && argv[argi][1]) {
		if (!strcmp(argv[argi], "-h") || !strcmp(argv[argi], "--help"))
			return usage(stdout, XS_HOST_EXIT_OK);
		if (!strcmp(argv[argi], "--module")) {
			module = 1;
			argi++;
			continue;
		}
		if (!strcmp(argv[argi], "--no-freeze")) {
			freeze = 0;
			argi++;
			continue;
		}
		if (!strcmp(argv[argi], "--stack") && (argi + 1 < argc)) {
			char* end;
			long slots;
			errno = 0;
			slots = strtol(argv[argi + 1], &end, 10);
			if (errno || *end || (slots < 128) || (slots > 1024 * 1024)) {
				fprintf(stderr, "xs-host: --stack wants a number of slots from 128 to 1048576\n");
				return XS_HOST_EXIT_USAGE;
			}
			creation.stackCount = (xsIntegerValue)slots;
			argi += 2;
			continue;
		}
		if (!strcmp(argv[argi], "--")) {
			argi++;
			break;
		}
		fprintf(stderr, "xs-host: unknown option %s\n", argv[argi]);
		return usage(stderr, XS_HOST_EXIT_USAGE);
	}
	if (argi >= argc)
		return usage(stderr, XS_HOST_EXIT_USAGE);
	{
		FILE* script = fopen(argv[argi], "rb");
		if (!script) {
			fprintf(stderr, "xs-host: cannot read %s: %s\n", argv[argi], strerror(errno));
			return XS_HOST_EXIT_USAGE;
		}
		fclose(script);
	}

	machine = xsCreateMachine(&creation, "xs-host", NULL);
	if (!machine) {
		fprintf(stderr, "xs-host: cannot create the XS machine\n");
		return XS_HOST_EXIT_USAGE;
	}
	status = run(machine, argv[argi], module, freeze, argc - argi - 1, argv + argi + 1);
	fflush(stdout);
	xsDeleteMachine(machine);
	return status;
}
