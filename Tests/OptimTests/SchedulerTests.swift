import Foundation
import Optim
import OptimGolden
import Testing

/// Learning-rate schedulers: torch's trajectories, state saved mid-schedule and restored,
/// per-group behaviour and refused options.
@Suite struct SchedulerTests {
    /// torch's lr_scheduler schedules, and swa_utils' SWALR.
    static let schedules = ["schedulers.json", "beyond_torch_schedulers.json"].flatMap {
        try! GoldenSchedule.load(data: Data(contentsOf: fixtures.appendingPathComponent($0)))
    }

    @Test func theFixturesHaveSchedules() {
        #expect(Self.schedules.count >= 22)
        #expect(Self.schedules.contains { $0.id.hasPrefix("SWALR/") })
    }

    @Test(arguments: schedules.map(\.id))
    func scheduleMatchesTorch(id: String) {
        let schedule = Self.schedules.first { $0.id == id }!
        let outcome = schedule.replay()
        guard case .pass = outcome else {
            Issue.record("\(id): \(outcome)")
            return
        }
    }

    /// Every kind of scheduler, over an SGD of two groups with momentum.
    static let kinds = [
        "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
        "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "CyclicLR-custom",
        "OneCycleLR", "OneCycleLR-three-phase-linear", "SequentialLR", "ChainedScheduler", "SWALR",
    ]

    static func make(_ kind: String, _ sgd: SGD) throws -> LRScheduler {
        switch kind {
        case "LambdaLR": return try LambdaLR(sgd, lambdas: [{ 1.0 / Double($0 + 1) }, { 0.9 * Double($0 % 3 + 1) }])
        case "MultiplicativeLR": return try MultiplicativeLR(sgd, lambda: { $0 % 2 == 0 ? 0.9 : 0.95 })
        case "StepLR": return try StepLR(sgd, stepSize: 3, gamma: 0.5)
        case "SWALR": return try SWALR(sgd, swaLR: [0.02, 0.3], annealEpochs: 4, annealing: .linear)
        case "MultiStepLR": return try MultiStepLR(sgd, milestones: [2, 5, 5, 9], gamma: 0.3)
        case "ConstantLR": return try ConstantLR(sgd, factor: 0.5, totalIters: 4)
        case "LinearLR": return try LinearLR(sgd, startFactor: 0.25, totalIters: 6)
        case "ExponentialLR": return try ExponentialLR(sgd, gamma: 0.9)
        case "PolynomialLR": return try PolynomialLR(sgd, totalIters: 8, power: 2)
        case "CosineAnnealingLR": return try CosineAnnealingLR(sgd, tMax: 5, etaMin: 0.001)
        case "CosineAnnealingWarmRestarts": return try CosineAnnealingWarmRestarts(sgd, t0: 3, tMult: 2, etaMin: 0.01)
        case "CyclicLR": return try CyclicLR(sgd, baseLR: [0.01, 0.02], maxLR: [0.1], stepSizeUp: 3, stepSizeDown: 2,
                                             mode: .expRange, gamma: 0.9)
        case "CyclicLR-custom": return try CyclicLR(sgd, baseLR: [0.01], maxLR: [0.1], stepSizeUp: 2,
                                                    scaleFunction: { 1 / ($0 + 1) }, scaleMode: .iterations)
        case "OneCycleLR": return try OneCycleLR(sgd, maxLR: [1, 0.5], totalSteps: 20)
        case "OneCycleLR-three-phase-linear":
            return try OneCycleLR(sgd, maxLR: [1], epochs: 4, stepsPerEpoch: 5, pctStart: 0.25, annealing: .linear,
                                  threePhase: true)
        case "SequentialLR":
            return try SequentialLR(sgd, schedulers: [LinearLR(sgd, startFactor: 0.1, totalIters: 3),
                                                      CosineAnnealingLR(sgd, tMax: 6), ExponentialLR(sgd, gamma: 0.8)],
                                    milestones: [3, 9])
        case "ChainedScheduler":
            return try ChainedScheduler([ConstantLR(sgd, factor: 0.5, totalIters: 3), ExponentialLR(sgd, gamma: 0.9)])
        default: fatalError(kind)
        }
    }

    static func sgd() throws -> SGD {
        try SGD(groups: [.init([Tensor([1.0])]), .init([Tensor([2.0])]) { $0.lr = 0.2 }],
                defaults: .init(lr: 0.1, momentum: 0.9))
    }

    /// Saved mid-schedule (with the optimizer's state, as a checkpoint holds both) and restored
    /// into new objects, a schedule continues exactly as the uninterrupted one.
    @Test(arguments: kinds)
    func aRestoredScheduleContinuesIdentically(kind: String) throws {
        let straightOptimizer = try Self.sgd()
        let straight = try Self.make(kind, straightOptimizer)
        var expected: [[Double]] = []
        for _ in 0..<18 {
            try straightOptimizer.step()
            try straight.step()
            expected.append(straight.lastLearningRates + straightOptimizer.paramGroups.map(\.options.momentum))
        }

        let firstOptimizer = try Self.sgd()
        let first = try Self.make(kind, firstOptimizer)
        for _ in 0..<7 {
            try firstOptimizer.step()
            try first.step()
        }
        let savedScheduler = try JSONEncoder().encode(first.stateDict())
        let savedOptimizer = try JSONEncoder().encode(firstOptimizer.stateDict())

        let optimizer = try Self.sgd()
        let resumed = try Self.make(kind, optimizer)
        try optimizer.loadStateDict(JSONDecoder().decode(OptimizerStateDict.self, from: savedOptimizer))
        try resumed.loadStateDict(JSONDecoder().decode(SchedulerState.self, from: savedScheduler))
        var got: [[Double]] = []
        for _ in 7..<18 {
            try optimizer.step()
            try resumed.step()
            got.append(resumed.lastLearningRates + optimizer.paramGroups.map(\.options.momentum))
        }
        #expect(got == Array(expected[7...]), "\(kind)")
    }

    @Test func aRestoredPlateauContinuesIdentically() throws {
        let metrics: [Double] = [1, 0.9, 0.9, 0.95, 0.97, 0.85, 0.86, 0.87, 0.88, 0.89, 0.7, 0.71, 0.72, 0.73]
        func run(restoringAt cut: Int?) throws -> [[Double]] {
            var optimizer = try Self.sgd()
            var plateau = try ReduceLROnPlateau(optimizer, factor: 0.5, patience: 1, cooldown: 1, minLR: [0.02, 0.01])
            var rates: [[Double]] = []
            for (epoch, metric) in metrics.enumerated() {
                if epoch == cut {
                    let saved = try JSONEncoder().encode(plateau.stateDict())
                    let savedOptimizer = optimizer.stateDict()
                    optimizer = try Self.sgd()
                    plateau = try ReduceLROnPlateau(optimizer, factor: 0.5, patience: 1, cooldown: 1, minLR: [0.02, 0.01])
                    try optimizer.loadStateDict(savedOptimizer)
                    try plateau.loadStateDict(JSONDecoder().decode(SchedulerState.self, from: saved))
                }
                try plateau.step(metric: metric)
                rates.append(plateau.lastLearningRates)
            }
            return rates
        }
        let straight = try run(restoringAt: nil)
        #expect(try run(restoringAt: 6) == straight)
        // Reduced by plateaus, down to each group's floor for the first.
        #expect(straight.last == [0.02, 0.025])
    }

    /// Each group follows its own base rate; momentum cycles per group.
    @Test func groupsKeepTheirOwnSchedules() throws {
        let sgd = try Self.sgd()
        let step = try StepLR(sgd, stepSize: 2, gamma: 0.5)
        for _ in 0..<4 {
            try sgd.step()
            try step.step()
        }
        #expect(step.lastLearningRates == [0.025, 0.05])

        let adam = try Adam(groups: [.init([Tensor([1.0])]), .init([Tensor([1.0])])])
        let cycle = try OneCycleLR(adam, maxLR: [0.1, 0.2], totalSteps: 10, baseMomentum: [0.8, 0.85], maxMomentum: [0.9, 0.95])
        #expect(adam.paramGroups.map(\.options.betas.first) == [0.9, 0.95])
        #expect(zip(cycle.lastLearningRates, [0.004, 0.008]).allSatisfy { abs($0 - $1) < 1e-15 })
        try cycle.step()
        #expect(adam.paramGroups[0].options.betas.first < 0.9 && adam.paramGroups[1].options.betas.first < 0.95)
    }

    @Test func invalidOptionsAreRefused() throws {
        let sgd = try Self.sgd()
        let adagrad = try Adagrad([Tensor([1.0])])
        let refusals: [(String, () throws -> Void)] = [
            ("StepLR step", { _ = try StepLR(sgd, stepSize: 0) }),
            ("ConstantLR factor", { _ = try ConstantLR(sgd, factor: 1.5) }),
            ("LinearLR start", { _ = try LinearLR(sgd, startFactor: 0) }),
            ("LinearLR end", { _ = try LinearLR(sgd, endFactor: 1.5) }),
            ("CosineAnnealingWarmRestarts T_0", { _ = try CosineAnnealingWarmRestarts(sgd, t0: 0) }),
            ("CosineAnnealingWarmRestarts T_mult", { _ = try CosineAnnealingWarmRestarts(sgd, t0: 2, tMult: 0) }),
            ("LambdaLR count", { _ = try LambdaLR(sgd, lambdas: [{ _ in 1 }, { _ in 1 }, { _ in 1 }]) }),
            ("CyclicLR without momentum", { _ = try CyclicLR(adagrad, baseLR: [0.1], maxLR: [1]) }),
            ("OneCycleLR without momentum", { _ = try OneCycleLR(adagrad, maxLR: [1], totalSteps: 5) }),
            ("OneCycleLR without steps", { _ = try OneCycleLR(sgd, maxLR: [1]) }),
            ("OneCycleLR pct_start", { _ = try OneCycleLR(sgd, maxLR: [1], totalSteps: 5, pctStart: 1.5) }),
            ("ReduceLROnPlateau factor", { _ = try ReduceLROnPlateau(sgd, factor: 1) }),
            ("ReduceLROnPlateau min_lr", { _ = try ReduceLROnPlateau(sgd, minLR: [0, 0, 0]) }),
            ("SequentialLR milestones", { _ = try SequentialLR(sgd, schedulers: [StepLR(sgd, stepSize: 1)], milestones: [1]) }),
            ("ChainedScheduler empty", { _ = try ChainedScheduler([]) }),
            ("SequentialLR other optimizer", {
                _ = try SequentialLR(sgd, schedulers: [StepLR(Self.sgd(), stepSize: 1), StepLR(sgd, stepSize: 1)], milestones: [2])
            }),
        ]
        for (label, make) in refusals {
            #expect(throws: OptimError.self, "\(label)") { try make() }
        }
        // OneCycleLR refuses to step past its total.
        let cycle = try OneCycleLR(sgd, maxLR: [1], totalSteps: 2)
        try cycle.step()
        try cycle.step()
        let rates = sgd.learningRates
        #expect(throws: OptimError.self) { try cycle.step() }
        #expect(sgd.learningRates == rates)
        // A schedule that would give a negative rate is refused and changes nothing.
        let negative = try LambdaLR(sgd, lambda: { $0 < 2 ? 1 : -1 })
        try negative.step()
        let before = sgd.learningRates
        #expect(throws: OptimError.self) { try negative.step() }
        #expect(sgd.learningRates == before && negative.lastEpoch == 1)
    }

    @Test func schedulersDriveEveryOptimizer() throws {
        let parameter = try Tensor([1.0])
        let optimizers: [any Optimizer] = [
            try RMSprop([parameter]), try Adagrad([Tensor([1.0])]), try NAdam([Tensor([1.0])]),
            try LBFGS([Tensor([1.0])]), try SparseAdam([Tensor([1.0])]),
        ]
        for optimizer in optimizers {
            let before = optimizer.learningRates[0]
            let scheduler = try StepLR(optimizer, stepSize: 1, gamma: 0.5)
            try scheduler.step()
            #expect(optimizer.learningRates[0] == before * 0.5)
        }
    }
}
