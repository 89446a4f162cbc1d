/// A running average of a list of parameters, as `torch.optim.swa_utils.AveragedModel` keeps
/// it for a model's parameters (`use_buffers=False`): stochastic weight averaging (Izmailov et
/// al., 2018) or an exponential moving average, updated on the engine.
///
/// The first ``update(from:)`` copies the parameters; each later one, with `n` the number of
/// updates so far:
///
///     a ← a + (p − a) / (n + 1)          (swa: the mean of every update's parameters)
///     a ← a + (1 − decay) · (p − a)      (ema)
///
/// as torch's `lerp` computes them (weight 1/(n + 1) for the mean, as torch does on CUDA; on
/// CPU torch divides, which can differ in the last bit). Evaluate or save the model with
/// ``averages``; ``SWALR`` is the learning-rate schedule that usually goes with it.
public final class AveragedParameters {
    /// How the average weighs the updates.
    public enum Strategy: Equatable, Sendable {
        /// Every update weighs the same: the running mean.
        case swa
        /// Exponential moving average, `decay` in [0, 1] (torch's `get_ema_multi_avg_fn`).
        case ema(decay: Double)
    }

    /// The averages, one per parameter, of its shape and dtype.
    public let averages: [Tensor]
    /// How the average weighs the updates (default ``Strategy/swa``).
    public let strategy: Strategy
    /// Updates so far (torch's `n_averaged`).
    public private(set) var count = 0
    /// Threads, backend and instruction set of the updates (default: the environment's).
    public var execution: Execution

    /// Averages of `parameters`, zero until the first update.
    public init(_ parameters: [Tensor], strategy: Strategy = .swa, execution: Execution? = nil) throws {
        if case .ema(let decay) = strategy, !(decay >= 0 && decay <= 1) {
            throw OptimError(.invalidOption, "Invalid decay value \(decay) provided. Please provide a value in [0,1] range.")
        }
        self.strategy = strategy
        self.execution = try execution ?? Execution.fromEnvironment()
        averages = try parameters.map { try Tensor.zeros($0.shape, dtype: $0.dtype) }
    }

    /// Folds the current values of `parameters` (the list given at construction, or one of the
    /// same shapes and dtypes) into the averages. Throws, changing nothing, when they differ.
    public func update(from parameters: [Tensor]) throws {
        guard parameters.count == averages.count else {
            throw OptimError(.invalidArgument, "got \(parameters.count) parameters to average; the average has \(averages.count)")
        }
        for (index, (parameter, average)) in zip(parameters, averages).enumerated()
        where parameter.shape != average.shape || parameter.dtype != average.dtype {
            throw OptimError(.invalidArgument, """
                parameter \(index) is a \(parameter.dtype) tensor of shape \(parameter.shape); its average is a \
                \(average.dtype) tensor of shape \(average.shape)
                """)
        }
        switch (count, strategy) {
        case (0, _): try Foreach.copy(averages, from: parameters, execution: execution)
        case (_, .swa): try Foreach.lerp(averages, parameters, weight: 1 / Double(count + 1), execution: execution)
        case (_, .ema(let decay)): try Foreach.lerp(averages, parameters, weight: 1 - decay, execution: execution)
        }
        count += 1
    }
}
