import CCairo
import Foundation

/// The confusion matrix as a PNG: one cell per (true, predicted) pair, shaded by its share of the
/// true class, with the count written in it, class names on both axes.
public enum ConfusionPlot {
    /// Draws `report`'s matrix into a PNG at `url`.
    /// - Throws: ``PipelineError`` when cairo cannot draw or write.
    public static func write(_ report: ClassificationReport, to url: URL) throws {
        let count = report.classes.count
        let cell = max(28.0, min(80.0, 640.0 / Double(max(count, 1))))
        let margin = 130.0
        let size = margin + cell * Double(count) + 30
        try drawPNG(width: Int(size), height: Int(size), to: url) { cr in
            cairo_set_font_size(cr, min(14, cell / 3))
            for truth in 0..<count {
                let total = max(1, report.confusion[truth].reduce(0, +))
                for predicted in 0..<count {
                    let value = report.confusion[truth][predicted]
                    let share = Double(value) / Double(total)
                    let x = margin + Double(predicted) * cell, y = margin + Double(truth) * cell
                    cairo_set_source_rgb(cr, 1 - 0.8 * share, 1 - 0.55 * share, 1 - 0.2 * share)
                    cairo_rectangle(cr, x, y, cell, cell)
                    cairo_fill_preserve(cr)
                    cairo_set_source_rgb(cr, 0.7, 0.7, 0.7)
                    cairo_set_line_width(cr, 1)
                    cairo_stroke(cr)
                    cairo_set_source_rgb(cr, share > 0.6 ? 1 : 0.1, share > 0.6 ? 1 : 0.1, share > 0.6 ? 1 : 0.1)
                    centred(cr, "\(value)", x: x + cell / 2, y: y + cell / 2 + 5)
                }
            }
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1)
            for (index, name) in report.classes.enumerated() {
                let label = String(name.prefix(14))
                var extents = cairo_text_extents_t()
                cairo_text_extents(cr, label, &extents)
                cairo_move_to(cr, margin - 8 - extents.x_advance, margin + (Double(index) + 0.5) * cell + 5)
                cairo_show_text(cr, label)
                cairo_save(cr)
                cairo_move_to(cr, margin + (Double(index) + 0.5) * cell + 5, margin - 8)
                cairo_rotate(cr, -Double.pi / 4)
                cairo_show_text(cr, label)
                cairo_restore(cr)
            }
            cairo_set_font_size(cr, 12)
            cairo_move_to(cr, 8, 18)
            cairo_show_text(cr, String(format: "rows: true class, columns: predicted (accuracy %.3f)", report.accuracy))
        }
    }

    private static func centred(_ cr: OpaquePointer, _ text: String, x: Double, y: Double) {
        var extents = cairo_text_extents_t()
        cairo_text_extents(cr, text, &extents)
        cairo_move_to(cr, x - extents.x_advance / 2, y)
        cairo_show_text(cr, text)
    }
}
