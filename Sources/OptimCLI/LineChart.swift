import Foundation

/// A line chart written as SVG: one or more series over a shared x axis, a legend when there
/// is more than one, a linear or logarithmic y axis, a linear or base-2 logarithmic x axis, and
/// caption lines under the plot. The plots of every command come from here.
struct LineChart {
    struct Series {
        let name: String
        let points: [(x: Double, y: Double)]
        /// Drawn dashed, as a model beside measured points is.
        var dashed = false
        /// Each point marked with a dot.
        var marked = false
        /// The palette's color of another series (a model beside its measurements); by default
        /// the series' own position.
        var colorIndex: Int? = nil
    }

    let title: String
    let subtitle: String
    var xLabel: String
    let yLabel: String
    var series: [Series]
    var logarithmicY = false
    /// A base-2 logarithmic x axis, with a tick at each power of two (threads, cores).
    var logarithmicX = false
    /// Lines of text under the plot.
    var caption: [String] = []

    private static let palette = ["#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bc4c00", "#0a7d8c",
                                  "#bf3989", "#6e7781", "#9a6700", "#0550ae", "#a40e26", "#116329"]

    func svg() -> String {
        let legendWidth = series.count > 1 ? 150.0 : 0
        let captionHeight = caption.isEmpty ? 0 : 8 + 15 * Double(caption.count)
        let width = 640.0 + legendWidth, height = 360.0 + captionHeight
        let left = 70.0, right = 20.0 + legendWidth, top = 56.0, bottom = 44.0 + captionHeight
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func drawable(_ point: (x: Double, y: Double)) -> Bool {
            point.x.isFinite && point.y.isFinite && (!logarithmicY || point.y > 0) && (!logarithmicX || point.x > 0)
        }
        let points = series.flatMap(\.points).filter(drawable)
        func scaledX(_ x: Double) -> Double { logarithmicX ? log2(x) : x }
        let xLow = points.map { scaledX($0.x) }.min() ?? 0, xHigh = max(points.map { scaledX($0.x) }.max() ?? 1, xLow + 1e-12)
        func scaled(_ y: Double) -> Double { logarithmicY ? log10(y) : y }
        var yLow = logarithmicY ? floor(points.map { scaled($0.y) }.min() ?? 0) : min(0, points.map(\.y).min() ?? 0)
        var yHigh = points.map { scaled($0.y) }.max() ?? 1
        if yHigh <= yLow { yHigh = yLow + 1 }
        // Linear axes end on a round tick: 1, 2 or 5 times a power of ten.
        let yStep = logarithmicY ? 1 : Self.niceStep((yHigh - yLow) / 5)
        yHigh = (yHigh / yStep).rounded(.up) * yStep
        yLow = (yLow / yStep).rounded(.down) * yStep
        func x(_ value: Double) -> Double { left + plotWidth * (scaledX(value) - xLow) / (xHigh - xLow) }
        func y(_ value: Double) -> Double { top + plotHeight * (1 - (scaled(value) - yLow) / (yHigh - yLow)) }
        func format(_ value: Double) -> String { String(format: "%.2f", value) }

        var lines: [String] = [
            ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" viewBox="0 0 \##(Int(width)) \##(Int(height))" font-family="Helvetica, Arial, sans-serif">"##,
            ##"<rect width="100%" height="100%" fill="white"/>"##,
            ##"<text x="\##(left)" y="24" font-size="17" font-weight="bold">\##(Self.escape(title))</text>"##,
            ##"<text x="\##(left)" y="44" font-size="12" fill="#555">\##(Self.escape(subtitle))</text>"##,
        ]
        let yTicks = Array(stride(from: yLow, through: yHigh + yStep * 1e-9, by: yStep))
        for tick in yTicks {
            let value = logarithmicY ? pow(10, tick) : tick
            let position = y(value)
            lines.append(##"<line x1="\##(left)" y1="\##(format(position))" x2="\##(left + plotWidth)" y2="\##(format(position))" stroke="#e5e5e5"/>"##)
            lines.append(##"<text x="\##(left - 8)" y="\##(format(position + 4))" font-size="11" text-anchor="end" fill="#333">\##(String(format: "%.3g", value))</text>"##)
        }
        let xTickCount = 8
        // Whole numbers on the x axis (threads, epochs) get whole ticks; a logarithmic axis one
        // at each power of two.
        let wholeX = points.allSatisfy { $0.x == $0.x.rounded() }
        let xStep = logarithmicX ? 1 : max(Self.niceStep((xHigh - xLow) / Double(xTickCount)), wholeX ? 1 : 0)
        for scaledTick in stride(from: (xLow / xStep).rounded(.up) * xStep, through: xHigh + xStep * 1e-9, by: xStep) {
            let tick = logarithmicX ? pow(2, scaledTick) : scaledTick
            let position = x(tick)
            lines.append(##"<line x1="\##(format(position))" y1="\##(top + plotHeight)" x2="\##(format(position))" y2="\##(top + plotHeight + 5)" stroke="#333"/>"##)
            lines.append(##"<text x="\##(format(position))" y="\##(top + plotHeight + 18)" font-size="11" text-anchor="middle" fill="#333">\##(String(format: "%g", tick))</text>"##)
        }
        lines.append(##"<line x1="\##(left)" y1="\##(top + plotHeight)" x2="\##(left + plotWidth)" y2="\##(top + plotHeight)" stroke="#333"/>"##)
        lines.append(##"<line x1="\##(left)" y1="\##(top)" x2="\##(left)" y2="\##(top + plotHeight)" stroke="#333"/>"##)
        lines.append(##"<text x="\##(left + plotWidth / 2)" y="\##(top + plotHeight + 38)" font-size="12" text-anchor="middle">\##(Self.escape(xLabel))</text>"##)
        for (number, line) in caption.enumerated() {
            lines.append(##"<text x="\##(left)" y="\##(format(top + plotHeight + 62 + 15 * Double(number)))" font-size="11" fill="#555">\##(Self.escape(line))</text>"##)
        }
        lines.append(##"<text x="16" y="\##(top + plotHeight / 2)" font-size="12" text-anchor="middle" transform="rotate(-90 16 \##(top + plotHeight / 2))">\##(Self.escape(yLabel))</text>"##)
        for (number, line) in series.enumerated() {
            let color = Self.palette[(line.colorIndex ?? number) % Self.palette.count]
            let drawn = line.points.filter(drawable)
            let coordinates = drawn.map { "\(format(x($0.x))),\(format(y($0.y)))" }.joined(separator: " ")
            // Past the palette, colors come again dotted, so that no two lines look the same.
            let dash = line.dashed ? #" stroke-dasharray="6 4""#
                : number >= Self.palette.count ? #" stroke-dasharray="2 3""# : ""
            lines.append(##"<polyline fill="none" stroke="\##(color)" stroke-width="2"\##(dash) points="\##(coordinates)"/>"##)
            if line.marked {
                for point in drawn {
                    lines.append(##"<circle cx="\##(format(x(point.x)))" cy="\##(format(y(point.y)))" r="2.2" fill="\##(color)"/>"##)
                }
            }
            if series.count > 1 {
                let legendY = top + 16 * Double(number)
                lines.append(##"<line x1="\##(left + plotWidth + 16)" y1="\##(format(legendY))" x2="\##(left + plotWidth + 36)" y2="\##(format(legendY))" stroke="\##(color)" stroke-width="2"\##(dash)/>"##)
                lines.append(##"<text x="\##(left + plotWidth + 42)" y="\##(format(legendY + 4))" font-size="11" fill="#333">\##(Self.escape(line.name))</text>"##)
            }
        }
        lines.append("</svg>")
        return lines.joined(separator: "\n") + "\n"
    }

    /// 1, 2 or 5 times a power of ten, at least `rough`.
    private static func niceStep(_ rough: Double) -> Double {
        guard rough > 0, rough.isFinite else { return 1 }
        let power = pow(10, floor(log10(rough)))
        for factor in [1.0, 2, 5, 10] where factor * power >= rough { return max(factor * power, 1e-12) }
        return 10 * power
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
