// TextEncoder and TextDecoder as globals (cbor-x uses them), as mcpack installs them: the Moddable
// SDK has them only as modules. Preloaded, so they exist before the benchmark's bundle runs.
import TextDecoder from 'text/decoder';
import TextEncoder from 'text/encoder';

globalThis.TextEncoder = TextEncoder;
globalThis.TextDecoder = TextDecoder;
