// Named CZlibInflate because ZIPFoundation already defines a module called CZlib.
#ifndef TLHUB_CZLIBINFLATE_SHIM_H
#define TLHUB_CZLIBINFLATE_SHIM_H
#include <zlib.h>

// inflateInit2 is a macro (it passes ZLIB_VERSION and sizeof(z_stream)): Swift cannot call it.
// windowBits 15 + 32 accepts gzip and zlib headers.
static inline int tl_inflate_init_gzip(z_stream *stream) { return inflateInit2(stream, 15 + 32); }
#endif
