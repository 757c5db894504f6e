/*
 * The xs-host's platform layer: the functions XS requires of every platform that this host does
 * not take from the engine's defaults (see xs_host_platform.h), and the host services that need
 * the engine's internals. This is the only file of the host that includes xsAll.h.
 */
#include "xsAll.h"
#include "xsScript.h"

#include <errno.h>

#include "host.h"

/*
 * Parsed scripts that the host handed to the engine. fxRunScript frees a script when it returns
 * and when it throws, but an abort (fxAbort, then fxExitToHost) jumps over both to main()'s
 * outermost frame. So the host holds each script while the engine runs it, and frees the ones
 * still held when the machine is deleted: those an abort interrupted, which nothing runs again.
 */
struct xsHostHeldScript {
	struct xsHostHeldScript* next;
	txScript* script;
};

static void xsHostHoldScript(txMachine* the, txScript* script)
{
	struct xsHostHeldScript* held = c_malloc(sizeof(struct xsHostHeldScript));
	if (!held) {
		fxDeleteScript(script);
		fxAbort(the, XS_NOT_ENOUGH_MEMORY_EXIT); /* does not return */
	}
	held->script = script;
	held->next = the->heldScripts;
	the->heldScripts = held;
}

/* The engine is done with `script` (it returned or threw, and freed the script). */
static void xsHostReleaseScript(txMachine* the, txScript* script)
{
	struct xsHostHeldScript** link = &the->heldScripts;
	while (*link) {
		struct xsHostHeldScript* held = *link;
		if (held->script == script) {
			*link = held->next;
			c_free(held);
			return;
		}
		link = &held->next;
	}
}

/* ---- what XS asks of the platform ---- */

void fxCreateMachinePlatform(txMachine* the)
{
	the->promiseJobs = 0;
	the->exitStatus = XS_HOST_EXIT_OK;
	the->heldScripts = NULL;
}

void fxDeleteMachinePlatform(txMachine* the)
{
	while (the->heldScripts) {
		struct xsHostHeldScript* held = the->heldScripts;
		the->heldScripts = held->next;
		fxDeleteScript(held->script);
		c_free(held);
	}
}

/* Called by the engine whenever it queues a promise job; xsHostRunJobs runs them. */
void fxQueuePromiseJobs(txMachine* the)
{
	the->promiseJobs = 1;
}

/* The innermost JavaScript frames, as an Error stack would show them (for aborts, which have no Error). */
static void xsHostPrintFrames(txMachine* the)
{
	txSlot* frame = the->frame;
	int shown = 0, total = 0;
	while (frame && frame->next) {
		txSlot* function = frame + 3;
		if ((function->kind == XS_REFERENCE_KIND) && mxIsFunction(function->value.reference)) {
			if (shown < 24) {
				txSlot* environment = mxFrameToEnvironment(frame);
				txSlot* name = mxBehaviorGetProperty(the, function->value.reference, mxID(_name), 0, XS_OWN);
				const char* text = "";
				if (name && ((name->kind == XS_STRING_KIND) || (name->kind == XS_STRING_X_KIND)))
					text = name->value.string;
				fprintf(stderr, " at %s (", text);
				if (environment->ID != XS_NO_ID)
					fprintf(stderr, "%s:%d", fxGetKeyName(the, environment->ID), (int)environment->value.environment.line);
				fputs(")\n", stderr);
				shown++;
			}
			total++;
		}
		frame = frame->next;
	}
	if (total > shown)
		fprintf(stderr, " ... and %d more frames\n", total - shown);
}

/*
 * Called by the engine when it cannot go on (or, for rejections, to report one). Anything but
 * a rejection ends the run: fxExitToHost jumps to the outermost jump frame, the one main() set.
 */
void fxAbort(txMachine* the, int status)
{
	const char* why;
	switch (status) {
	case XS_UNHANDLED_EXCEPTION_EXIT:
		xsHostReportException(the, "uncaught exception");
		xsHostFail(the, XS_HOST_EXIT_EXCEPTION);
		fxExitToHost(the);
		break;
	case XS_UNHANDLED_REJECTION_EXIT:
		/* Reported and remembered; the other rejections still get reported. */
		xsHostReportException(the, "unhandled promise rejection");
		xsHostFail(the, XS_HOST_EXIT_EXCEPTION);
		return;
	case XS_STACK_OVERFLOW_EXIT:
		why = "stack overflow";
		break;
	case XS_NOT_ENOUGH_MEMORY_EXIT:
		why = "not enough memory";
		break;
	case XS_NO_MORE_KEYS_EXIT:
		why = "not enough keys";
		break;
	case XS_TOO_MUCH_COMPUTATION_EXIT:
		why = "too much computation";
		break;
	case XS_DEAD_STRIP_EXIT:
		why = "dead strip";
		break;
	case XS_FATAL_CHECK_EXIT:
		why = "fatal check";
		break;
	default:
		why = "unknown reason";
		break;
	}
	fprintf(stderr, "xs-host: XS aborted: %s (status %d)\n", why, status);
	xsHostPrintFrames(the);
	xsHostFail(the, XS_HOST_EXIT_ABORT);
	fxExitToHost(the);
}

/* ---- host services ---- */

/*
 * What the Moddable SDK's linker does to the built-ins once the preloaded modules have run
 * (xs/tools/xsl.c, fxFreezeBuiltIns, SDK 8.2.3), so that the device's application code finds them
 * frozen: Object.freeze (not deep) of Atomics, JSON, Math, Reflect and of every built-in prototype,
 * in the same order. Left out: mxProgram and mxHosts, which at that point in xsl are the linker's
 * tables (its modules, its host functions), not objects that JavaScript can reach; and the
 * explicit-resource-management prototypes, which XS 13.3 does not have. The constructors and the
 * global object stay unfrozen, as on the device.
 */
void xsHostFreezeBuiltIns(txMachine* the)
{
#define mxFreezeBuiltInCall \
	mxPush(mxObjectConstructor); \
	mxPushSlot(freeze); \
	mxCall()
#define mxFreezeBuiltInRun \
	mxRunCount(1); \
	mxPop()

	txSlot* freeze;
	txInteger index;
	const txTypeDispatch* dispatch;
	mxTemporary(freeze);
	mxPush(mxObjectConstructor);
	mxGetID(mxID(_freeze));
	mxPullSlot(freeze);

	mxFreezeBuiltInCall; mxPush(mxAtomicsObject); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxJSONObject); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxMathObject); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxGlobal); mxGetID(mxID(_Math)); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxReflectObject); mxFreezeBuiltInRun;

	mxFreezeBuiltInCall; mxPush(mxAggregateErrorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxArgumentsSloppyPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxArgumentsStrictPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxArrayBufferPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxArrayIteratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxArrayPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxAsyncFromSyncIteratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxAsyncFunctionPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxAsyncGeneratorFunctionPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxAsyncGeneratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxAsyncIteratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxBigIntPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxBooleanPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxCompartmentPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxDataViewPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxDatePrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxErrorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxEvalErrorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxFinalizationRegistryPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxFunctionPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxGeneratorFunctionPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxGeneratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxHostPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxIteratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxMapIteratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxMapPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxModulePrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxNumberPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxObjectPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxPromisePrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxProxyPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxRangeErrorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxReferenceErrorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxRegExpPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxRegExpStringIteratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxSetIteratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxSetPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxSharedArrayBufferPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxStringIteratorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxStringPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxSymbolPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxSyntaxErrorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxTransferPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxTypedArrayPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxTypeErrorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxURIErrorPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxWeakMapPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxWeakRefPrototype); mxFreezeBuiltInRun;
	mxFreezeBuiltInCall; mxPush(mxWeakSetPrototype); mxFreezeBuiltInRun;
	for (index = 0, dispatch = &gxTypeDispatches[0]; index < mxTypeArrayCount; index++, dispatch++) {
		mxFreezeBuiltInCall;
		mxPush(the->stackPrototypes[-1 - (txInteger)dispatch->constructorID]);
		mxGetID(mxID(_prototype));
		mxFreezeBuiltInRun;
	}
	mxFreezeBuiltInCall; mxPush(mxEnumeratorFunction); mxGetID(mxID(_prototype)); mxFreezeBuiltInRun;

	mxFreezeBuiltInCall; mxPush(mxArrayPrototype); mxGetID(mxID(_Symbol_unscopables)); mxFreezeBuiltInRun;

	mxPop();
#undef mxFreezeBuiltInCall
#undef mxFreezeBuiltInRun
}

int xsHostExitStatus(txMachine* the)
{
	return the->exitStatus;
}

void xsHostFail(txMachine* the, int status)
{
	if (the->exitStatus == XS_HOST_EXIT_OK)
		the->exitStatus = status;
}

double xsHostHeapUsed(txMachine* the)
{
	return (double)the->currentChunksSize + (double)the->currentHeapCount * (double)sizeof(txSlot);
}

void xsHostRunJobs(txMachine* the)
{
	for (;;) {
		while (the->promiseJobs) {
			the->promiseJobs = 0;
			fxRunPromiseJobs(the);
		}
		fxEndJob(the); /* finalization registries, rejections of collected promises: may queue more */
		if (!the->promiseJobs)
			break;
	}
	fxCheckUnhandledRejections(the, 1);
}

static void xsHostReportParserMessage(const char* kind, txString path, txInteger line, txString format, c_va_list arguments)
{
	if (path && line)
		fprintf(stderr, "%s:%d: %s: ", path, (int)line, kind);
	else
		fprintf(stderr, "%s: ", kind);
	vfprintf(stderr, format, arguments);
	fputc('\n', stderr);
}

static void xsHostReportParserError(void* console, txString path, txInteger line, txString format, c_va_list arguments)
{
	(void)console;
	xsHostReportParserMessage("syntax error", path, line, format, arguments);
}

static void xsHostReportParserWarning(void* console, txString path, txInteger line, txString format, c_va_list arguments)
{
	(void)console;
	xsHostReportParserMessage("warning", path, line, format, arguments);
}

static int xsHostGetByte(void* stream)
{
	return fgetc((FILE*)stream);
}

/* Parses a file as a script (mxProgramFlag) or a module; NULL when the file cannot be read. */
static txScript* xsHostParseFile(txMachine* the, const char* path, txUnsigned flags)
{
	txParser parserRecord;
	txParser* parser = &parserRecord;
	txParserJump jump;
	txScript* volatile script = C_NULL; /* assigned after setjmp */
	FILE* file = fopen(path, "rb");
	if (!file)
		return C_NULL;
	fxInitializeParser(parser, the, the->parserBufferSize, the->parserTableModulo);
	parser->firstJump = &jump;
	parser->reportError = xsHostReportParserError;
	parser->reportWarning = xsHostReportParserWarning;
	if (c_setjmp(jump.jmp_buf) == 0) {
		parser->path = fxNewParserSymbol(parser, (txString)path);
		/* mxDebugFlag: keep line numbers in the byte code, so that Error stacks name file:line. */
		fxParserTree(parser, file, xsHostGetByte, flags | mxDebugFlag, C_NULL);
		fxParserHoist(parser);
		fxParserBind(parser);
		/* With syntax errors, the code made here throws a SyntaxError when run. */
		script = fxParserCode(parser);
	}
	fxTerminateParser(parser);
	fclose(file);
	return script;
}

void xsHostRunScriptFile(txMachine* the, const char* path)
{
	txSlot* realm = mxModuleInstanceInternal(mxProgram.value.reference)->value.module.realm;
	txScript* volatile script = xsHostParseFile(the, path, mxProgramFlag); /* volatile: kept across setjmp */
	if (!script)
		mxUnknownError("cannot load %s", path);
	xsHostHoldScript(the, script);
	mxTry(the) {
		fxRunScript(the, script, mxRealmGlobal(realm), C_NULL, mxRealmClosures(realm)->value.reference, C_NULL,
			mxProgram.value.reference);
	}
	mxCatch(the) {
		xsHostReleaseScript(the, script);
		fxJump(the);
	}
	xsHostReleaseScript(the, script);
	mxPop(); /* the completion value */
}

/*
 * Modules: a specifier is a file path, absolute or relative ("./", "../") to the importing
 * module; the module's name is its real path. There are no bare specifiers (bundles have none).
 */
txID fxFindModule(txMachine* the, txSlot* realm, txID moduleID, txSlot* slot)
{
	char name[C_PATH_MAX];
	char path[C_PATH_MAX];
	char real[C_PATH_MAX];
	(void)realm;
	fxToStringBuffer(the, slot, name, sizeof(name));
	if (name[0] == '/')
		c_strcpy(path, name);
	else if (!c_strncmp(name, "./", 2) || !c_strncmp(name, "../", 3)) {
		char* slash;
		if (moduleID == XS_NO_ID)
			path[0] = 0;
		else {
			c_strncpy(path, fxGetKeyName(the, moduleID), sizeof(path) - 1);
			path[sizeof(path) - 1] = 0;
			slash = c_strrchr(path, '/');
			if (slash)
				slash[1] = 0;
			else
				path[0] = 0;
		}
		if (c_strlen(path) + c_strlen(name) >= sizeof(path))
			mxRangeError("module path too long: %s", name);
		c_strcat(path, name);
	}
	else
		return XS_NO_ID;
	if (!c_realpath(path, real))
		return XS_NO_ID;
	return fxNewNameC(the, real);
}

void fxLoadModule(txMachine* the, txSlot* module, txID moduleID)
{
	txScript* volatile script = xsHostParseFile(the, fxGetKeyName(the, moduleID), 0); /* kept across setjmp */
	if (!script)
		return;
	xsHostHoldScript(the, script);
	mxTry(the) {
		fxResolveModule(the, module, moduleID, script, C_NULL, C_NULL); /* runs the script, which defines the module */
	}
	mxCatch(the) {
		xsHostReleaseScript(the, script);
		fxJump(the);
	}
	xsHostReleaseScript(the, script);
}

static void xsHostModuleFulfilled(txMachine* the)
{
	(void)the;
}

static void xsHostModuleRejected(txMachine* the)
{
	mxException = *mxArgv(0);
	xsHostReportException(the, "uncaught exception");
	xsHostFail(the, XS_HOST_EXIT_EXCEPTION);
}

void xsHostRunModuleFile(txMachine* the, const char* path)
{
	txSlot* realm = mxModuleInstanceInternal(mxProgram.value.reference)->value.module.realm;
	char real[C_PATH_MAX];
	if (!c_realpath(path, real))
		mxUnknownError("cannot load %s: %s", path, strerror(errno));
	/* import(real).then(fulfilled, rejected): the module runs as the promise jobs run. */
	mxPushStringC(real);
	fxRunImport(the, realm, XS_NO_ID);
	mxDub();
	mxGetID(mxID(_then));
	mxCall();
	fxNewHostFunction(the, xsHostModuleFulfilled, 1, XS_NO_ID, XS_NO_ID);
	fxNewHostFunction(the, xsHostModuleRejected, 1, XS_NO_ID, XS_NO_ID);
	mxRunCount(2);
	mxPop(); /* the promise that then() returned */
}
