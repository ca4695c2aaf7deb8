#ifndef TLHUB_CJPEG_SHIM_H
#define TLHUB_CJPEG_SHIM_H
#include <stdio.h>
#include <stddef.h>
#include <jpeglib.h>
// The decoder itself (with a setjmp/longjmp error manager so libjpeg never calls exit()) lives in
// the CImageCodecs target; this module only exposes the library's types and link flags.
#endif
