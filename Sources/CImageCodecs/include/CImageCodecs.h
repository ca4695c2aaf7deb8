#ifndef TLHUB_CIMAGECODECS_H
#define TLHUB_CIMAGECODECS_H

// JPEG and PNG decoding into memory for TLImaging.
//
// libjpeg and libpng report fatal errors through callbacks that must not return. Swift cannot
// host setjmp/longjmp, so the decoders live here: each installs an error handler that records the
// library's message and longjmps back into the decoding function, which then frees everything
// and returns a status. Neither library ever calls exit() or writes to stderr through these paths.

#include <stddef.h>

/// Status codes returned by the decoders.
enum {
    TL_DECODE_OK = 0,
    /// The data is corrupt, truncated or uses a feature the library rejects; see `message`.
    TL_DECODE_CORRUPT = 1,
    /// The image has more pixels than the caller allowed.
    TL_DECODE_TOO_LARGE = 2,
    /// Allocating the pixel buffer failed.
    TL_DECODE_OUT_OF_MEMORY = 3,
};

/// A decoded raster as the codec produced it, before any conversion to RGB.
typedef struct tl_raster {
    /// `height` rows of `width * components * (bit_depth / 8)` bytes, top row first, samples
    /// interleaved; 16-bit samples are big-endian. Owned by the raster: release with tl_raster_free.
    unsigned char *pixels;
    int width;
    int height;
    /// JPEG: 1 (gray), 3 (RGB) or 4 (CMYK as stored, Adobe-inverted in practice).
    /// PNG: 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); palettes are expanded to RGB(A).
    int components;
    /// 8, or 16 for 16-bit PNG samples.
    int bit_depth;
    /// PNG only: the colour type from the IHDR chunk (0 gray, 2 RGB, 3 palette, 4 gray+alpha,
    /// 6 RGBA); -1 for JPEG.
    int source_color_type;
    /// Why decoding failed, as one line; empty on success.
    char message[256];
} tl_raster;

/// Decodes a baseline or progressive JPEG held in memory.
///
/// Truncated input, even a missing final EOI marker, is an error as in Pillow (libjpeg would
/// otherwise pad the image with gray and warn);
/// other libjpeg warnings are ignored silently, as Pillow does.
int tl_decode_jpeg(const unsigned char *data, size_t size, long long max_pixels, tl_raster *out);

/// Decodes a PNG (any colour type, bit depth and interlacing) held in memory.
///
/// Bit depths below 8 are expanded to 8 and palettes to RGB; 16-bit samples are kept.
int tl_decode_png(const unsigned char *data, size_t size, long long max_pixels, tl_raster *out);

/// Frees the pixels of a raster filled by a decoder; safe to call twice.
void tl_raster_free(tl_raster *raster);

#endif
