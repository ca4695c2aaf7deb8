#ifndef TLHUB_CPNG_SHIM_H
#define TLHUB_CPNG_SHIM_H
#include <png.h>
#endif
