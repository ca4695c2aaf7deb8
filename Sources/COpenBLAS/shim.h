#ifndef TLHUB_COPENBLAS_SHIM_H
#define TLHUB_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
