#ifndef TLHUB_CCAIRO_SHIM_H
#define TLHUB_CCAIRO_SHIM_H
// libcairo from Debian (libcairo2-dev): 2D drawing for the training curves.
#include <cairo/cairo.h>
#endif
