import ArgumentParser
import Foundation
import Optim

/// Writes one SVG plot of the learning rate over epochs per scheduler.
struct PlotSchedules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot-schedules",
        abstract: "Plots every learning-rate scheduler's rate over epochs, one SVG file each.",
        discussion: "Each plot runs the scheduler on SGD (lr 0.1, momentum 0.9, one group) for the epochs shown."
    )

    @Option(help: "Folder to write the SVG files into.")
    var output = "Docs/schedulers"

    /// A scheduler to plot: its name, the options shown in the title, the epochs, and how to
    /// build and step it.
    struct Plot {
        let name: String
        let options: String
        let epochs: Int
        let build: (SGD) throws -> (Int) throws -> Void

        init(name: String, options: String, epochs: Int = 40, build: @escaping (SGD) throws -> (Int) throws -> Void) {
            (self.name, self.options, self.epochs, self.build) = (name, options, epochs, build)
        }

        /// A scheduler stepped once an epoch.
        init(name: String, options: String, epochs: Int = 40, scheduler: @escaping (SGD) throws -> LRScheduler) {
            self.init(name: name, options: options, epochs: epochs) { sgd in
                let built = try scheduler(sgd)
                return { _ in try built.step() }
            }
        }
    }

    static var plots: [Plot] { [
        Plot(name: "LambdaLR", options: "lambda = 0.95^e · (1 + e mod 5) / 5") {
            try LambdaLR($0, lambda: { pow(0.95, Double($0)) * Double(1 + $0 % 5) / 5 })
        },
        Plot(name: "MultiplicativeLR", options: "lambda = 0.9 on even epochs, 1.02 on odd") {
            try MultiplicativeLR($0, lambda: { $0 % 2 == 0 ? 0.9 : 1.02 })
        },
        Plot(name: "StepLR", options: "step_size=10, gamma=0.5") { try StepLR($0, stepSize: 10, gamma: 0.5) },
        Plot(name: "MultiStepLR", options: "milestones=[8, 20, 30], gamma=0.3") {
            try MultiStepLR($0, milestones: [8, 20, 30], gamma: 0.3)
        },
        Plot(name: "ConstantLR", options: "factor=0.25, total_iters=10") {
            try ConstantLR($0, factor: 0.25, totalIters: 10)
        },
        Plot(name: "LinearLR", options: "start_factor=0.1, end_factor=1, total_iters=15") {
            try LinearLR($0, startFactor: 0.1, endFactor: 1, totalIters: 15)
        },
        Plot(name: "ExponentialLR", options: "gamma=0.92") { try ExponentialLR($0, gamma: 0.92) },
        Plot(name: "PolynomialLR", options: "total_iters=30, power=2") {
            try PolynomialLR($0, totalIters: 30, power: 2)
        },
        Plot(name: "CosineAnnealingLR", options: "T_max=15, eta_min=0.005") {
            try CosineAnnealingLR($0, tMax: 15, etaMin: 0.005)
        },
        Plot(name: "CosineAnnealingWarmRestarts", options: "T_0=5, T_mult=2, eta_min=0.005") {
            try CosineAnnealingWarmRestarts($0, t0: 5, tMult: 2, etaMin: 0.005)
        },
        Plot(name: "CyclicLR-triangular", options: "base_lr=0.01, max_lr=0.1, step_size_up=5") {
            try CyclicLR($0, baseLR: [0.01], maxLR: [0.1], stepSizeUp: 5)
        },
        Plot(name: "CyclicLR-triangular2", options: "base_lr=0.01, max_lr=0.1, step_size_up=5, mode=triangular2") {
            try CyclicLR($0, baseLR: [0.01], maxLR: [0.1], stepSizeUp: 5, mode: .triangular2)
        },
        Plot(name: "CyclicLR-exp_range", options: "base_lr=0.01, max_lr=0.1, step_size_up=5, mode=exp_range, gamma=0.97") {
            try CyclicLR($0, baseLR: [0.01], maxLR: [0.1], stepSizeUp: 5, mode: .expRange, gamma: 0.97)
        },
        Plot(name: "CyclicLR-custom", options: "base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=8, scale_fn=1/√cycle") { sgd in
            try CyclicLR(sgd, baseLR: [0.01], maxLR: [0.1], stepSizeUp: 4, stepSizeDown: 8,
                         scaleFunction: { 1 / $0.squareRoot() })
        },
        // OneCycleLR's last step is total_steps - 1: one more runs past the schedule.
        Plot(name: "OneCycleLR", options: "max_lr=0.1, total_steps=40", epochs: 39) {
            try OneCycleLR($0, maxLR: [0.1], totalSteps: 40)
        },
        Plot(name: "OneCycleLR-three-phase-linear", options: "max_lr=0.1, total_steps=40, three_phase, anneal_strategy=linear",
             epochs: 39) { sgd in
            try OneCycleLR(sgd, maxLR: [0.1], totalSteps: 40, annealing: .linear, threePhase: true)
        },
        Plot(name: "SequentialLR", options: "LinearLR(0.1, 5 iters), then CosineAnnealingLR(T_max=35) at epoch 5") { sgd in
            try SequentialLR(sgd, schedulers: [LinearLR(sgd, startFactor: 0.1, totalIters: 5),
                                               CosineAnnealingLR(sgd, tMax: 35)], milestones: [5])
        },
        Plot(name: "ChainedScheduler", options: "ConstantLR(0.5, 10 iters) and ExponentialLR(0.95)") { sgd in
            try ChainedScheduler([ConstantLR(sgd, factor: 0.5, totalIters: 10), ExponentialLR(sgd, gamma: 0.95)])
        },
        Plot(name: "ReduceLROnPlateau", options: "factor=0.5, patience=3, metric improving then flat") { sgd in
            let s = try ReduceLROnPlateau(sgd, factor: 0.5, patience: 3)
            return { epoch in try s.step(metric: epoch < 8 ? 1.0 / Double(epoch + 1) : 0.12) }
        },
    ] }

    func run() throws {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        for plot in Self.plots {
            let sgd = try SGD([Tensor([0.0])], options: .init(lr: 0.1, momentum: 0.9))
            var rates = [sgd.learningRates[0]]
            let step = try plot.build(sgd)
            rates[0] = sgd.learningRates[0]
            for epoch in 0..<plot.epochs {
                try sgd.step()
                try step(epoch)
                rates.append(sgd.learningRates[0])
            }
            let path = (output as NSString).appendingPathComponent("\(plot.name).svg")
            try svg(title: plot.name, subtitle: plot.options, rates: rates).write(toFile: path, atomically: true, encoding: .utf8)
            print("wrote \(path)")
        }
    }

    /// A line chart of `rates` (epoch 0 is the rate after the scheduler was built).
    func svg(title: String, subtitle: String, rates: [Double]) -> String {
        let points = rates.enumerated().map { (x: Double($0.offset), y: $0.element) }
        return LineChart(title: title, subtitle: subtitle, xLabel: "epoch", yLabel: "learning rate",
                         series: [.init(name: title, points: points, marked: true)]).svg()
    }
}
