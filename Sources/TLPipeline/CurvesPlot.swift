import CCairo
import Foundation
import TLTensor
import TLTraining

/// `curves.png`: loss and accuracy against epoch, train and validation, in two panels with axes,
/// ticks, labels and a legend, drawn with libcairo.
public enum CurvesPlot {
    /// Draws `history` into a PNG at `url` (`width × height` pixels).
    /// - Throws: ``PipelineError`` when cairo cannot draw or write.
    public static func write(_ history: [EpochRecord], to url: URL, width: Int = 1000, height: Int = 420) throws {
        let epochs = history.map { Double($0.epoch) }
        let half = Double(width) / 2
        try drawPNG(width: width, height: height, to: url) { context in
            panel(context, x: 0, width: half, height: Double(height), title: "loss", epochs: epochs,
                  series: [("train", history.map { Double($0.loss) }), ("validation", history.compactMap { $0.validationLoss.map(Double.init) })])
            panel(context, x: half, width: half, height: Double(height), title: "accuracy", epochs: epochs,
                  series: [("train", history.map { Double($0.accuracy) }), ("validation", history.compactMap { $0.validationAccuracy.map(Double.init) })])
        }
    }

    private static let colours: [(Double, Double, Double)] = [(0.12, 0.47, 0.71), (1.0, 0.5, 0.05)]

    private static func panel(_ cr: OpaquePointer, x: Double, width: Double, height: Double, title: String,
                              epochs: [Double], series: [(name: String, values: [Double])]) {
        let left = x + 70, right = x + width - 20, top = 40.0, bottom = height - 55
        let all = series.flatMap(\.values)
        var low = all.min() ?? 0, high = all.max() ?? 1
        if high - low < 1e-9 { low -= 0.5; high += 0.5 }
        let pad = (high - low) * 0.08
        low -= pad; high += pad
        if title == "accuracy" { low = max(low, 0); high = min(high, 1) }
        let firstEpoch = epochs.first ?? 1, lastEpoch = max(epochs.last ?? 1, firstEpoch + 1)
        func px(_ epoch: Double) -> Double { left + (epoch - firstEpoch) / (lastEpoch - firstEpoch) * (right - left) }
        func py(_ value: Double) -> Double { bottom - (value - low) / (high - low) * (bottom - top) }

        // Axes.
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2)
        cairo_set_line_width(cr, 1.2)
        cairo_move_to(cr, left, top); cairo_line_to(cr, left, bottom); cairo_line_to(cr, right, bottom)
        cairo_stroke(cr)
        // Ticks and grid: five on y, up to ten epochs on x.
        cairo_set_font_size(cr, 12)
        for index in 0...4 {
            let value = low + (high - low) * Double(index) / 4
            let y = py(value)
            cairo_set_source_rgb(cr, 0.9, 0.9, 0.9)
            cairo_move_to(cr, left, y); cairo_line_to(cr, right, y); cairo_stroke(cr)
            cairo_set_source_rgb(cr, 0.2, 0.2, 0.2)
            cairo_move_to(cr, left - 6, y); cairo_line_to(cr, left, y); cairo_stroke(cr)
            text(cr, String(format: "%.3f", value), x: left - 10, y: y + 4, alignRight: true)
        }
        let step = max(1, Int((lastEpoch - firstEpoch) / 9.0.rounded(.up)))
        for epoch in stride(from: Int(firstEpoch), through: Int(lastEpoch), by: step) {
            let xPosition = px(Double(epoch))
            cairo_move_to(cr, xPosition, bottom); cairo_line_to(cr, xPosition, bottom + 6); cairo_stroke(cr)
            text(cr, "\(epoch)", x: xPosition - 4, y: bottom + 20, alignRight: false)
        }
        // Labels.
        cairo_set_font_size(cr, 14)
        text(cr, title, x: (left + right) / 2 - 20, y: top - 14, alignRight: false)
        cairo_set_font_size(cr, 12)
        text(cr, "epoch", x: (left + right) / 2 - 16, y: height - 15, alignRight: false)
        cairo_save(cr)
        cairo_move_to(cr, x + 16, (top + bottom) / 2 + 20)
        cairo_rotate(cr, -Double.pi / 2)
        cairo_show_text(cr, title)
        cairo_restore(cr)
        // Series and legend.
        for (index, line) in series.enumerated() where !line.values.isEmpty {
            let (r, g, b) = colours[index % colours.count]
            cairo_set_source_rgb(cr, r, g, b)
            cairo_set_line_width(cr, 2)
            for (position, value) in line.values.enumerated() {
                let point = (px(epochs[position]), py(value))
                if position == 0 { cairo_move_to(cr, point.0, point.1) } else { cairo_line_to(cr, point.0, point.1) }
            }
            cairo_stroke(cr)
            for (position, value) in line.values.enumerated() {
                cairo_arc(cr, px(epochs[position]), py(value), 3, 0, 2 * Double.pi)
                cairo_fill(cr)
            }
            let legendY = top + 8 + Double(index) * 18
            cairo_move_to(cr, right - 120, legendY); cairo_line_to(cr, right - 95, legendY); cairo_stroke(cr)
            cairo_set_source_rgb(cr, 0.2, 0.2, 0.2)
            text(cr, line.name, x: right - 88, y: legendY + 4, alignRight: false)
        }
    }

    private static func text(_ cr: OpaquePointer, _ string: String, x: Double, y: Double, alignRight: Bool) {
        var extents = cairo_text_extents_t()
        cairo_text_extents(cr, string, &extents)
        cairo_move_to(cr, alignRight ? x - extents.x_advance : x, y)
        cairo_show_text(cr, string)
    }
}
