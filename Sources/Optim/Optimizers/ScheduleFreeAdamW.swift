/// Schedule-free AdamW (Defazio et al., 2024, "The Road Less Scheduled"), as
/// `schedulefree.AdamWScheduleFree` 1.4.1 computes it in train mode. The parameters are the
/// training point `y`, between the base sequence `z` and its average `x`.
///
/// At the group's `t`-th step (`k = t − 1`), per group:
///
///     lrₜ ← lr · min(1, t / warmupSteps)
///     lrMax ← max(lrMax, lrₜ);  w ← tʳ · lrMaxᵖ   (p = weightLRPower);  Σw ← Σw + w;  c ← w / Σw
///
/// and for each parameter with gradient `g` (`z` starts as a copy of `y`):
///
///     v ← β₂ · v + (1 − β₂) · g²
///     u ← g / (√(v / (1 − β₂ᵗ)) + ε) + weightDecay · y
///     y ← y + c · (z − y)
///     y ← y + lrₜ · (β₁ · (1 − c) − 1) · u
///     z ← z − lrₜ · u
///
/// State: `z`, `exp_avg_sq` (v); the step count and `weight_sum`, `lr_max`, `scheduled_lr`
/// belong to the group. ``evaluationParameters()`` moves the parameters to `x` for
/// evaluation, ``trainingParameters()`` back to `y`, as the reference's `eval()` and
/// `train()`. The reference checks no option; this library refuses negative rates and
/// decays and betas outside [0, 1). torch has no schedule-free optimizer.
public final class ScheduleFreeAdamW: ElementwiseOptimizer<ScheduleFreeAdamWRule.Options>, @unchecked Sendable {
    /// Whether the parameters hold `y` (training) rather than `x` (evaluation).
    public private(set) var isTraining = true

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    override class var recipe: EngineRecipe<Options>? { .swiftRule(ScheduleFreeAdamWRule.self) }

    /// Steps in training mode; throws, changing nothing, after ``evaluationParameters()``.
    override func performStep() throws {
        try lock.withLock {
            guard isTraining else {
                throw OptimError(.invalidArgument, """
                    schedule-free AdamW steps only in training mode: call trainingParameters() after \
                    evaluationParameters()
                    """)
            }
            try super.performStep()
        }
    }

    /// Moves every parameter to the average `x = y + (1 − 1/β₁)(z − y)`, for evaluation.
    public func evaluationParameters() throws {
        try lock.withLock {
            guard isTraining else { return }
            try interpolate { 1 - 1 / $0.betas.first }
            isTraining = false
        }
    }

    /// Moves every parameter back to the training point `y = x + (1 − β₁)(z − x)`.
    public func trainingParameters() throws {
        try lock.withLock {
            guard !isTraining else { return }
            try interpolate { 1 - $0.betas.first }
            isTraining = true
        }
    }

    private func interpolate(_ weight: (Options) -> Double) throws {
        for group in paramGroups {
            let pairs = group.parameters.compactMap { p in state(for: p)?["z"].map { (p, $0) } }
            guard !pairs.isEmpty else { continue }
            try Foreach.lerp(pairs.map(\.0), pairs.map(\.1), weight: weight(group.options), execution: execution)
        }
    }
}

/// The rule of ``ScheduleFreeAdamW``.
public enum ScheduleFreeAdamWRule: ElementwiseRule {
    /// ``ScheduleFreeAdamW``'s options, with the reference's defaults and names.
    public struct Options: TorchFieldOptions, DefaultOptions, Equatable {
        /// Learning rate (default 0.0025).
        public var lr = 0.0025
        /// β₁ interpolates `y` between `x` and `z`, β₂ averages the squared gradient (default (0.9, 0.999)).
        public var betas = Pair(0.9, 0.999)
        /// Added to the denominator (default 1e-8).
        public var eps = 1e-8
        /// Weight decay, applied at `y` (default 0).
        public var weightDecay = 0.0
        /// Steps of linear warm-up of the learning rate (default 0).
        public var warmupSteps = 0
        /// The average's weights grow as tʳ (default 0).
        public var r = 0.0
        /// The average's weights grow as lrMax^weightLRPower (default 2).
        public var weightLRPower = 2.0

        /// schedulefree's defaults: lr 0.0025, betas (0.9, 0.999), eps 1e-8, no decay or warm-up,
        /// r 0, weightLRPower 2.
        public init() {}

        /// Every option under the reference's name, with what its value must satisfy.
        public static let torchFields: [OptionField<Self>] = [
            .number("lr", \.lr), .pair("betas", \.betas, .betas), .number("eps", \.eps, .epsilon),
            .number("weight_decay", \.weightDecay, .nonNegative), .integer("warmup_steps", \.warmupSteps, .nonNegative),
            .number("r", \.r, .finite), .number("weight_lr_power", \.weightLRPower, .finite),
        ]
    }

    /// The group's running sums.
    public struct ScalarState: RuleScalarState {
        var weightSum = 0.0, lrMax = -1.0, scheduledLR = 0.0
        /// The state before the first step: `weight_sum` 0, `lr_max` −1, `scheduled_lr` 0.
        public init() {}
        /// `weight_sum`, `lr_max` and `scheduled_lr`, by schedulefree's names.
        public static let fields: [ScalarStateField<Self>] = [
            .double("weight_sum", \.weightSum), .double("lr_max", \.lrMax), .double("scheduled_lr", \.scheduledLR),
        ]
    }

    /// The per-step scalars, computed in `Double` by ``scalars(_:step:state:)``.
    public struct Scalars {
        var oneMinusBeta2, beta2, biasCorrection2, eps, weightDecay, average, yStep, negativeLR: Double
    }

    /// The optimizer's name, for messages.
    public static let name = "ScheduleFreeAdamW"
    /// `z`, the base sequence (a copy of `y` at the first update), and `exp_avg_sq` (v).
    public static let stateNames = ["z", "exp_avg_sq"]
    /// The group's: its step count advances at every step, as schedulefree counts it.
    public static let stepCounting = RuleStepCounting.perGroup

    /// Advances the group's warm-up rate, `lr_max` and `weight_sum`, and returns the average's
    /// weight c, the steps of `y` and `z` and the bias correction `1 − β₂ᵗ`, in `Double`.
    public static func scalars(_ o: Options, step: Int, state: inout ScalarState) -> Scalars {
        let k = step - 1
        let schedule = k < o.warmupSteps ? Double(k + 1) / Double(o.warmupSteps) : 1
        let lr = o.lr * schedule
        state.scheduledLR = lr
        state.lrMax = max(lr, state.lrMax)
        let weight = Math.pow(Double(k + 1), o.r) * Math.pow(state.lrMax, o.weightLRPower)
        state.weightSum += weight
        let average = state.weightSum == 0 ? 0 : weight / state.weightSum
        return Scalars(oneMinusBeta2: 1 - o.betas.second, beta2: o.betas.second,
                       biasCorrection2: 1 - Math.pow(o.betas.second, Double(k + 1)), eps: o.eps,
                       weightDecay: o.weightDecay, average: average,
                       yStep: lr * (o.betas.first * (1 - average) - 1), negativeLR: -lr)
    }

    /// v ← β₂ · v + (1 − β₂) · g²; u ← g / (√(v / (1 − β₂ᵗ)) + ε) + weightDecay · y;
    /// y ← y + c · (z − y); y ← y + lrₜ · (β₁ · (1 − c) − 1) · u; z ← z − lrₜ · u.
    public static func update<V: RuleVector>(parameter y: inout V, gradient g: V, state: inout RuleState<V>,
                                             scalars s: Scalars) {
        if state.isFirstUpdate { state[0] = y }
        state[1] = state[1] * V(s.beta2) + V(s.oneMinusBeta2) * g * g
        let denominator = V.sqrt(state[1] / V(s.biasCorrection2)) + V(s.eps)
        var u = g / denominator
        if s.weightDecay != 0 { u = u + V(s.weightDecay) * y }
        y = y.lerp(to: state[0], weight: s.average)
        y = y + V(s.yStep) * u
        state[0] = state[0] + V(s.negativeLR) * u
    }
}
