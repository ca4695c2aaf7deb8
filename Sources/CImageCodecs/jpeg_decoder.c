#include "CImageCodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

// An error manager whose error_exit longjmps back to tl_decode_jpeg instead of calling exit(),
// and whose message output is silent.
struct tl_jpeg_error_manager {
    struct jpeg_error_mgr library;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int saw_premature_end;
};

static void tl_jpeg_error_exit(j_common_ptr cinfo) {
    struct tl_jpeg_error_manager *manager = (struct tl_jpeg_error_manager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, manager->message);
    longjmp(manager->jump, 1);
}

static void tl_jpeg_emit_message(j_common_ptr cinfo, int level) {
    struct tl_jpeg_error_manager *manager = (struct tl_jpeg_error_manager *)cinfo->err;
    if (level < 0) {
        // jpeg_mem_src reports running out of data as this warning and then feeds a fake EOI,
        // which would silently produce a gray-padded image.
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
            manager->saw_premature_end = 1;
        }
        cinfo->err->num_warnings++;
    }
}

static void tl_jpeg_output_message(j_common_ptr cinfo) {
    (void)cinfo;
}

int tl_decode_jpeg(const unsigned char *data, size_t size, long long max_pixels, tl_raster *out) {
    struct jpeg_decompress_struct cinfo;
    struct tl_jpeg_error_manager manager;

    memset(out, 0, sizeof *out);
    out->source_color_type = -1;
    out->bit_depth = 8;
    memset(&manager, 0, sizeof manager);

    cinfo.err = jpeg_std_error(&manager.library);
    manager.library.error_exit = tl_jpeg_error_exit;
    manager.library.emit_message = tl_jpeg_emit_message;
    manager.library.output_message = tl_jpeg_output_message;

    if (setjmp(manager.jump)) {
        snprintf(out->message, sizeof out->message, "%s", manager.message);
        jpeg_destroy_decompress(&cinfo);
        tl_raster_free(out);
        return TL_DECODE_CORRUPT;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    switch (cinfo.num_components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo.out_color_space = JCS_RGB; break;
    case 4: cinfo.out_color_space = JCS_CMYK; break;
    default:
        snprintf(out->message, sizeof out->message, "cannot handle %d-component JPEG images",
                 cinfo.num_components);
        jpeg_destroy_decompress(&cinfo);
        return TL_DECODE_CORRUPT;
    }

    long long pixel_count = (long long)cinfo.image_width * (long long)cinfo.image_height;
    if (max_pixels > 0 && pixel_count > max_pixels) {
        snprintf(out->message, sizeof out->message,
                 "image has %u x %u pixels, more than the limit of %lld",
                 cinfo.image_width, cinfo.image_height, max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return TL_DECODE_TOO_LARGE;
    }

    jpeg_start_decompress(&cinfo);
    if (manager.saw_premature_end) {
        snprintf(out->message, sizeof out->message, "image file is truncated (premature end of JPEG data)");
        jpeg_destroy_decompress(&cinfo);
        return TL_DECODE_CORRUPT;
    }

    size_t row_bytes = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->components = cinfo.output_components;
    out->pixels = malloc(row_bytes * (size_t)cinfo.output_height);
    if (!out->pixels) {
        snprintf(out->message, sizeof out->message, "out of memory for %u x %u pixels",
                 cinfo.output_width, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return TL_DECODE_OUT_OF_MEMORY;
    }

    while (cinfo.output_scanline < cinfo.output_height && !manager.saw_premature_end) {
        JSAMPROW row = out->pixels + row_bytes * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    // Reading on to the EOI marker catches files cut after the last scanline too, which Pillow
    // also rejects ("image file is truncated").
    if (!manager.saw_premature_end) {
        jpeg_finish_decompress(&cinfo);
    }
    if (manager.saw_premature_end) {
        snprintf(out->message, sizeof out->message, "image file is truncated (premature end of JPEG data)");
        jpeg_destroy_decompress(&cinfo);
        tl_raster_free(out);
        return TL_DECODE_CORRUPT;
    }
    jpeg_destroy_decompress(&cinfo);
    return TL_DECODE_OK;
}

void tl_raster_free(tl_raster *raster) {
    free(raster->pixels);
    raster->pixels = NULL;
}
