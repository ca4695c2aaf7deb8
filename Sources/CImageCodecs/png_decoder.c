#include "CImageCodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>

// Where libpng's read callback takes bytes from, and where the error handler leaves its message.
struct tl_png_context {
    const unsigned char *data;
    size_t size;
    size_t offset;
    char message[200];
};

static void tl_png_error(png_structp png, png_const_charp message) {
    struct tl_png_context *context = (struct tl_png_context *)png_get_error_ptr(png);
    snprintf(context->message, sizeof context->message, "%s", message);
    png_longjmp(png, 1);
}

static void tl_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void tl_png_read(png_structp png, png_bytep destination, size_t length) {
    struct tl_png_context *context = (struct tl_png_context *)png_get_io_ptr(png);
    if (length > context->size - context->offset) {
        png_error(png, "image file is truncated (premature end of PNG data)");
    }
    memcpy(destination, context->data + context->offset, length);
    context->offset += length;
}

int tl_decode_png(const unsigned char *data, size_t size, long long max_pixels, tl_raster *out) {
    struct tl_png_context context = {data, size, 0, {0}};
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = TL_DECODE_CORRUPT;

    memset(out, 0, sizeof *out);

    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(out->message, sizeof out->message, "not a PNG file (bad signature)");
        return TL_DECODE_CORRUPT;
    }
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context, tl_png_error, tl_png_warning);
    if (!png) {
        snprintf(out->message, sizeof out->message, "cannot initialise libpng");
        return TL_DECODE_OUT_OF_MEMORY;
    }
    info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(out->message, sizeof out->message, "cannot initialise libpng");
        return TL_DECODE_OUT_OF_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        if (status == TL_DECODE_CORRUPT) {
            snprintf(out->message, sizeof out->message, "%s", context.message);
        }
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        tl_raster_free(out);
        return status;
    }

    png_set_read_fn(png, &context, tl_png_read);
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info);
    png_uint_32 height = png_get_image_height(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    int color_type = png_get_color_type(png, info);
    out->source_color_type = color_type;

    long long pixel_count = (long long)width * (long long)height;
    if (max_pixels > 0 && pixel_count > max_pixels) {
        snprintf(out->message, sizeof out->message,
                 "image has %u x %u pixels, more than the limit of %lld", width, height, max_pixels);
        status = TL_DECODE_TOO_LARGE;
        png_longjmp(png, 1);
    }

    // Pillow ignores gAMA/sRGB/iCCP and keeps 16-bit samples until conversion; so do we.
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int output_depth = png_get_bit_depth(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || (output_depth != 8 && output_depth != 16) ||
        row_bytes != (size_t)width * (size_t)channels * (size_t)(output_depth / 8)) {
        snprintf(context.message, sizeof context.message,
                 "unexpected PNG layout after expansion (%d channels, %d bits)", channels, output_depth);
        png_longjmp(png, 1);
    }

    out->pixels = malloc(row_bytes * (size_t)height);
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (!out->pixels || !rows) {
        snprintf(out->message, sizeof out->message, "out of memory for %u x %u pixels", width, height);
        status = TL_DECODE_OUT_OF_MEMORY;
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < height; y++) {
        rows[y] = out->pixels + row_bytes * y;
    }
    png_read_image(png, rows);
    // Chunks after the image data are not read: Pillow tolerates a missing IEND, and nothing
    // after IDAT changes a pixel.

    out->width = (int)width;
    out->height = (int)height;
    out->components = channels;
    out->bit_depth = output_depth;
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return TL_DECODE_OK;
}
