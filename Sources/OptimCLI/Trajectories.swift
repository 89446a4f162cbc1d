import ArgumentParser
import Foundation
import Optim

/// `optim trajectories`: every optimizer's path on two-dimensional test functions, drawn over
/// the function's level sets, one SVG per function with a panel per optimizer.
struct Trajectories: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draws every optimizer's path on 2-D test functions (Rosenbrock, an ill-conditioned quadratic), one SVG each.",
        discussion: """
            Each optimizer starts from the same point with its defaults but for the learning \
            rate, which is the one of a fixed grid (1e-4 to 1) that ends lowest after the \
            given steps: defaults are made for networks, not for these functions.
            """)

    @Option(help: "Folder to write the SVG files into.")
    var output = "Docs/trajectories"

    @Option(help: "Steps per path.")
    var steps = 300

    func validate() throws {
        guard steps > 0, steps <= 100_000 else { throw ValidationError("--steps must be in 1...100000") }
    }

    /// A function of two variables with its gradient, its minimum and the box drawn.
    struct TestFunction: Sendable {
        let name: String
        let formula: String
        let start: (Double, Double)
        let minimum: (Double, Double)
        let box: (x: ClosedRange<Double>, y: ClosedRange<Double>)
        let value: @Sendable (Double, Double) -> Double
        let gradient: @Sendable (Double, Double) -> (Double, Double)
    }

    static let functions: [TestFunction] = [
        TestFunction(name: "rosenbrock", formula: "f(x, y) = (1 − x)² + 100 (y − x²)²", start: (-1.5, 2),
                     minimum: (1, 1), box: (-2...2, -1...3),
                     value: { x, y in (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x) },
                     gradient: { x, y in (-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)) }),
        // x² + 50 y² turned by 30°: a condition number of 50 along axes no diagonal method sees.
        TestFunction(name: "ill-conditioned-quadratic", formula: "f = u² + 50 v², (u, v) = (x, y) turned by 30°",
                     start: (-1.6, 1.2), minimum: (0, 0), box: (-2...2, -2...2),
                     value: { x, y in
                         let (u, v) = turned(x, y)
                         return u * u + 50 * v * v
                     },
                     gradient: { x, y in
                         let (u, v) = turned(x, y)
                         let (du, dv) = (2 * u, 100 * v)
                         // The gradient in (x, y) is the (u, v) gradient turned back.
                         return (cos30 * du - sin30 * dv, sin30 * du + cos30 * dv)
                     }),
    ]

    static let cos30 = 3.0.squareRoot() / 2, sin30 = 0.5
    static func turned(_ x: Double, _ y: Double) -> (Double, Double) { (cos30 * x + sin30 * y, -sin30 * x + cos30 * y) }

    static let learningRates: [Double] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1]

    /// The optimizer's path from the function's start, or nil when it cannot run on one vector
    /// of two elements (sparse gradients only, matrices only) or the options are refused.
    func path(_ entry: OptimizerEntry, _ function: TestFunction, lr: Double) -> [(Double, Double)]? {
        guard entry.sparseGradients != .required, !entry.needsMatrices,
              let point = try? Tensor([function.start.0, function.start.1], dtype: .float64),
              let optimizer = try? entry.make([point], options: ["lr": .number(lr)]) else { return nil }
        func evaluate() -> Double {
            let values = point.toArray()
            let (gx, gy) = function.gradient(values[0], values[1])
            point.grad = try? Tensor([gx, gy], dtype: .float64)
            return function.value(values[0], values[1])
        }
        var path = [function.start]
        for _ in 0..<steps {
            do {
                if entry.engine == .closure { _ = try optimizer.step(evaluate) } else {
                    _ = evaluate()
                    try optimizer.step()
                }
            } catch { return nil }
            let values = point.toArray()
            guard values.allSatisfy(\.isFinite) else { break }
            path.append((values[0], values[1]))
        }
        return path
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        for function in Self.functions {
            var panels: [(name: String, lr: Double, path: [(Double, Double)])] = []
            for entry in OptimizerCatalog.entries {
                var best: (lr: Double, path: [(Double, Double)], final: Double)?
                for lr in Self.learningRates {
                    guard let path = path(entry, function, lr: lr), let last = path.last else { continue }
                    let final = path.count == steps + 1 ? function.value(last.0, last.1) : .infinity
                    if best == nil || final < best!.final { best = (lr, path, final) }
                }
                if let best { panels.append((entry.name, best.lr, best.path)) }
            }
            let file = (output as NSString).appendingPathComponent("\(function.name).svg")
            try svg(function, panels).write(toFile: file, atomically: true, encoding: .utf8)
            print("wrote \(file) (\(panels.count) optimizers)")
        }
    }

    /// A grid of panels: the function's level sets as shades, the path in color, the start and
    /// the minimum marked.
    private func svg(_ function: TestFunction, _ panels: [(name: String, lr: Double, path: [(Double, Double)])]) -> String {
        let columns = 5, panelSize = 190.0, gap = 16.0, header = 54.0, caption = 30.0
        let rows = (panels.count + columns - 1) / columns
        let width = Double(columns) * (panelSize + gap) + gap
        let height = header + Double(rows) * (panelSize + caption + gap) + gap
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        // The shade of a cell: log of the value above the minimum, over the box.
        let cells = 36
        let (xs, ys) = (function.box.x, function.box.y)
        let floorValue = function.value(function.minimum.0, function.minimum.1)
        var shades: [[Double]] = []
        for row in 0..<cells {
            shades.append((0..<cells).map { column in
                let x = xs.lowerBound + (xs.upperBound - xs.lowerBound) * (Double(column) + 0.5) / Double(cells)
                let y = ys.upperBound - (ys.upperBound - ys.lowerBound) * (Double(row) + 0.5) / Double(cells)
                return log10(function.value(x, y) - floorValue + 1e-2)
            })
        }
        let low = shades.joined().min() ?? 0, high = max(shades.joined().max() ?? 1, low + 1e-9)
        var lines: [String] = [
            ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" viewBox="0 0 \##(Int(width)) \##(Int(height))" font-family="Helvetica, Arial, sans-serif">"##,
            ##"<rect width="100%" height="100%" fill="white"/>"##,
            ##"<text x="\##(gap)" y="24" font-size="17" font-weight="bold">\##(function.name): \##(function.formula)</text>"##,
            ##"<text x="\##(gap)" y="44" font-size="12" fill="#555">\##(steps) steps from (\##(function.start.0), \##(function.start.1)); each optimizer at its defaults with the learning rate of 1e-4 … 1 that ends lowest; ○ start, + minimum</text>"##,
        ]
        // The shades once, drawn in every panel.
        let cell = panelSize / Double(cells)
        lines.append(##"<defs><g id="levels">"##)
        for row in 0..<cells {
            for column in 0..<cells {
                let shade = Int(250 - 110 * (shades[row][column] - low) / (high - low))
                lines.append(##"<rect x="\##(f(Double(column) * cell))" y="\##(f(Double(row) * cell))" width="\##(f(cell + 0.3))" height="\##(f(cell + 0.3))" fill="rgb(\##(shade),\##(shade),\##(min(255, shade + 12)))"/>"##)
            }
        }
        lines.append(##"</g></defs>"##)
        for (number, panel) in panels.enumerated() {
            let left = gap + Double(number % columns) * (panelSize + gap)
            let top = header + Double(number / columns) * (panelSize + caption + gap)
            func px(_ x: Double) -> Double { left + panelSize * (x - xs.lowerBound) / (xs.upperBound - xs.lowerBound) }
            func py(_ y: Double) -> Double { top + panelSize * (ys.upperBound - y) / (ys.upperBound - ys.lowerBound) }
            lines.append(##"<use href="#levels" x="\##(f(left))" y="\##(f(top))"/>"##)
            let clipped = panel.path.map { (min(max($0.0, xs.lowerBound), xs.upperBound), min(max($0.1, ys.lowerBound), ys.upperBound)) }
            let points = clipped.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            lines.append(##"<polyline fill="none" stroke="#d1242f" stroke-width="1.4" points="\##(points)"/>"##)
            lines.append(##"<circle cx="\##(f(px(function.start.0)))" cy="\##(f(py(function.start.1)))" r="3.5" fill="none" stroke="#111" stroke-width="1.2"/>"##)
            let (mx, my) = (px(function.minimum.0), py(function.minimum.1))
            lines.append(##"<path d="M\##(f(mx - 5)) \##(f(my))h10M\##(f(mx)) \##(f(my - 5))v10" stroke="#111" stroke-width="1.5"/>"##)
            lines.append(##"<rect x="\##(f(left))" y="\##(f(top))" width="\##(f(panelSize))" height="\##(f(panelSize))" fill="none" stroke="#999"/>"##)
            let last = panel.path[panel.path.count - 1]
            let final = function.value(last.0, last.1) - floorValue
            lines.append(##"<text x="\##(f(left))" y="\##(f(top + panelSize + 13))" font-size="11" font-weight="bold">\##(panel.name)</text>"##)
            lines.append(##"<text x="\##(f(left))" y="\##(f(top + panelSize + 26))" font-size="10" fill="#333">lr \##(String(format: "%g", panel.lr)), f − f* = \##(String(format: "%.2g", final)) after \##(panel.path.count - 1) steps</text>"##)
        }
        lines.append("</svg>")
        return lines.joined(separator: "\n") + "\n"
    }
}
