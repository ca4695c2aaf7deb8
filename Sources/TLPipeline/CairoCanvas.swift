import CCairo
import Foundation

/// A white `width × height` cairo image drawn by `draw` and written to a PNG at `url`
/// atomically (temporary sibling, then rename).
/// - Throws: ``PipelineError`` when cairo cannot draw or the PNG cannot be written.
func drawPNG(width: Int, height: Int, to url: URL, _ draw: (OpaquePointer) -> Void) throws {
    guard let surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(width), Int32(height)) else {
        throw PipelineError(url.path, "cairo could not create an image")
    }
    defer { cairo_surface_destroy(surface) }
    guard let context = cairo_create(surface) else { throw PipelineError(url.path, "cairo could not draw") }
    defer { cairo_destroy(context) }
    cairo_set_source_rgb(context, 1, 1, 1)
    cairo_paint(context)
    cairo_select_font_face(context, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
    draw(context)
    cairo_surface_flush(surface)
    let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
    guard cairo_surface_write_to_png(surface, temporary.path) == CAIRO_STATUS_SUCCESS, rename(temporary.path, url.path) == 0 else {
        unlink(temporary.path)
        throw PipelineError(url.path, "cannot write the PNG")
    }
}
