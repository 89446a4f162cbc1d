/// Limited-memory BFGS, as `torch.optim.LBFGS` (after Nocedal, 1980, and minFunc's
/// implementation), with an optional strong-Wolfe line search.
///
/// Each `step(closure)` runs up to `maxIter` iterations on the parameters viewed as one
/// vector `x`, with `g` the gradient that the closure leaves in the parameters (zero for a
/// parameter without one):
///
///     d ← −g                                      (the very first iteration; H ← 1)
///     y ← g − g_prev,  s ← t · d                  (later iterations)
///     if y·s > 1e-10: remember (y, s, ρ = 1 / y·s), forgetting the oldest beyond
///                     historySize; H ← y·s / y·y
///     d ← −H̃ g                                    (two-loop recursion over the memory, H̃₀ = H)
///     t ← lr · min(1, 1 / ‖g‖₁) on the very first iteration, lr afterwards
///     stop if g·d > −toleranceChange
///     x ← x + t · d                               (t from the strong-Wolfe search if chosen)
///
/// and stops after `maxIter` iterations, `maxEval` closure calls, when max |gᵢ| ≤
/// `toleranceGrad`, when max |t · dᵢ| ≤ `toleranceChange`, or when the loss changes by less
/// than `toleranceChange`. It returns the loss of the first closure call. With `maximize`,
/// the loss and the gradient are negated where they enter the algorithm (torch 2.15's
/// `maximize`); the returned loss is the closure's own.
///
/// The vectors (`d`, the previous gradient, the memory) are flat buffers of the parameters'
/// element count, in the parameters' dtype, and every vector operation is a multi-tensor
/// operation of ``Foreach`` on the optimizer's ``execution``: norms are accumulated in `Double`
/// with a fixed order, so a step gives the same bits for every thread count, backend and
/// instruction-set tier. Dot products and the first step length's 1 / Σ|g| follow torch's own
/// orders on x86: float64 dot products the BLAS order up to 4,096 elements, float32 ones the
/// BLAS order (in float) up to 15 elements and to rounding beyond. The scalars (t, H, ρ, the
/// line search's values) are what torch makes of them: 0-dimensional tensors of the parameters'
/// dtype where torch computes them from tensors, Python floats elsewhere, mixed by torch's
/// rules (`TorchNumber`), so that float32 runs round where torch's do and a run follows
/// torch's trajectory to the last bit, but where torch's float32 square root (one ulp off the
/// correctly rounded one for about one value in six) meets a cubic interpolation.
///
/// Differences from torch: one parameter group only (as torch, which raises otherwise); all
/// parameters must share a dtype; options are checked when the optimizer is built (torch lets
/// any `line_search_fn` and a `history_size` below 1 through until the first step fails), and
/// `max_iter` or `max_eval` below 1 and non-finite numbers are refused, which torch runs;
/// ``step()`` without a closure throws.
/// If the closure throws, the step stops there: parameters hold the last iterate (the line
/// search restores them first) and the state keeps the progress made. So does a gradient that
/// stops fitting its parameter (sparse, another shape or dtype) at a later call of the closure
/// in one step; at the first call it is refused before anything changes.
///
/// State, on the first parameter, under torch's names: `func_evals`, `n_iter`, `t`, `H_diag`,
/// `prev_loss` (``ParameterState/values``) and `d`, `prev_flat_grad` (tensors);
/// ``ParameterState/step`` is `n_iter`.
public final class LBFGS: Optimizer, @unchecked Sendable {
    /// The line search of each iteration.
    public enum LineSearch: String, Sendable, CaseIterable {
        /// A fixed step t = lr (torch: `line_search_fn=None`).
        case none
        /// A line search satisfying the strong Wolfe conditions, c₁ = 1e-4, c₂ = 0.9: its first
        /// trial, then at most as many more as the step has left of `maxEval` (torch:
        /// `line_search_fn="strong_wolfe"`).
        case strongWolfe = "strong_wolfe"
    }

    /// LBFGS's options, with torch's defaults.
    public struct Options: OptimizerOptions, Equatable {
        /// Learning rate: the step length without line search, the first trial step with it
        /// (default 1).
        public var lr: Double
        /// Iterations per `step` at most (torch: `max_iter`, default 20).
        public var maxIter: Int
        /// Closure calls per `step` at most (torch: `max_eval`); nil means `maxIter * 5 / 4`
        /// (integer division), fixed when the options are given to the optimizer, as torch.
        public var maxEval: Int?
        /// Stop when max |gᵢ| ≤ this (torch: `tolerance_grad`, default 1e-7).
        public var toleranceGrad: Double
        /// Stop when the loss or the step changes by less (torch: `tolerance_change`, 1e-9).
        public var toleranceChange: Double
        /// Correction pairs remembered (torch: `history_size`, default 100).
        public var historySize: Int
        /// The line search (torch: `line_search_fn`, default none).
        public var lineSearch: LineSearch
        /// Maximize the objective instead of minimizing it (default false).
        public var maximize: Bool

        /// Options with torch 2.15's defaults; each argument sets the property of its name.
        public init(lr: Double = 1, maxIter: Int = 20, maxEval: Int? = nil, toleranceGrad: Double = 1e-7,
                    toleranceChange: Double = 1e-9, historySize: Int = 100, lineSearch: LineSearch = .none,
                    maximize: Bool = false) {
            self.lr = lr
            self.maxIter = maxIter
            self.maxEval = maxEval
            self.toleranceGrad = toleranceGrad
            self.toleranceChange = toleranceChange
            self.historySize = historySize
            self.lineSearch = lineSearch
            self.maximize = maximize
        }

        /// These options with `maxEval` filled in.
        var resolved: Options {
            var copy = self
            copy.maxEval = effectiveMaxEval
            return copy
        }

        /// `maxEval`, or torch's `max_iter * 5 // 4` (as `maxIter + maxIter / 4`, saturating at
        /// `Int.max` where Python's integers would grow past it).
        var effectiveMaxEval: Int {
            if let maxEval { return maxEval }
            let (sum, overflow) = maxIter.addingReportingOverflow(maxIter / 4)
            return overflow ? Int.max : sum
        }

        func validate() throws {
            try OptionCheck.learningRate(lr)
            guard maxIter >= 1 else {
                throw OptimError(.invalidOption, "Invalid max_iter value: \(maxIter) (must be >= 1)")
            }
            if let maxEval, maxEval < 1 {
                throw OptimError(.invalidOption, "Invalid max_eval value: \(maxEval) (must be >= 1)")
            }
            // torch takes any tolerance: a negative one turns its stopping test off.
            try OptionCheck.finite(toleranceGrad, "tolerance_grad")
            try OptionCheck.finite(toleranceChange, "tolerance_change")
            guard historySize >= 1 else {
                throw OptimError(.invalidOption, "Invalid history_size value: \(historySize) (must be >= 1)")
            }
        }
    }

    private var group: ParameterGroup<Options>
    private let parameters: [Tensor]
    private let dtype: DType
    private let elementCount: Int
    /// Threads, backend and instruction set of the vector operations.
    public var execution: Execution {
        get { lock.withLock { storedExecution } }
        set { lock.withLock { storedExecution = newValue } }
    }
    private var storedExecution: Execution
    /// Accepted for the ``Optimizer`` protocol: LBFGS's vectors are flat buffers, so both paths
    /// run the same launches.
    public var implementation: Implementation

    private let launcher = ForeachLauncher()
    /// Every public member runs under it: see ``OptimizerLock``.
    private let lock = OptimizerLock()
    /// Functions run around steps, state dicts and loads (torch's optimizer hooks).
    public let hooks = OptimizerHooks()
    // Flat buffers with per-parameter views, for moving data between them and the parameters.
    private let gathered: FlatBuffer
    private let direction: FlatBuffer
    private let lineSearchStart: FlatBuffer
    /// Flat buffers without views, recycled once nothing refers to them (gradients of line-search
    /// trials, the memory's y and s).
    private var pool: [Tensor] = []

    // Torch's state.
    private var funcEvals = 0
    private var nIter = 0
    private var hasDirection = false
    private var t: Double?
    private var hDiag: Double?
    private var prevLoss: Double?
    private var prevFlatGrad: Tensor?
    private var oldDirs: [Tensor] = []
    private var oldSteps: [Tensor] = []
    private var ro: [Double] = []
    private var al: [Double] = []

    /// The options of a group built without changes.
    public static let defaultOptions = Options()

    /// LBFGS over one parameter group: more than one is refused, as torch refuses them.
    public init(groups: [ParameterGroupSpec<Options>], defaults: Options = Options(), execution: Execution? = nil,
                implementation: Implementation = .multiTensor) throws {
        guard groups.count == 1 else {
            throw OptimError(.invalidArgument, """
                LBFGS doesn't support per-parameter options (parameter groups): got \(groups.count) groups; \
                pass all parameters in one group
                """)
        }
        let parameters = groups[0].parameters
        guard let first = parameters.first else {
            throw OptimError(.invalidArgument, "optimizer got an empty parameter list")
        }
        var seen = Set<ObjectIdentifier>()
        for parameter in parameters {
            guard seen.insert(ObjectIdentifier(parameter)).inserted else {
                throw OptimError(.invalidArgument, "some parameters appear more than once in the parameter groups (\(parameter))")
            }
            guard parameter.dtype == first.dtype else {
                throw OptimError(.invalidArgument, """
                    LBFGS views all parameters as one vector, so they must share a dtype: got \(first.dtype) and \
                    \(parameter.dtype)
                    """)
            }
        }
        var options = defaults
        groups[0].configure(&options)
        try options.validate()
        storedExecution = try execution ?? Execution.fromEnvironment()
        self.implementation = implementation
        self.parameters = parameters
        self.group = ParameterGroup(parameters: parameters, options: options.resolved)
        self.dtype = first.dtype
        self.elementCount = parameters.reduce(0) { $0 + $1.count }
        gathered = try FlatBuffer(shapes: parameters.map(\.shape), dtype: dtype)
        direction = try FlatBuffer(shapes: parameters.map(\.shape), dtype: dtype)
        lineSearchStart = try FlatBuffer(shapes: parameters.map(\.shape), dtype: dtype)
    }

    /// The one parameter group LBFGS has, as torch's.
    public var paramGroups: [ParameterGroup<Options>] { [group] }

    /// Replaces the options of group 0 (the only one); `maxEval` nil becomes `maxIter * 5 / 4`.
    public func setOptions(_ options: Options, group index: Int) throws {
        try lock.withLock {
            guard index == 0 else {
                throw OptimError(.invalidArgument, "no parameter group \(index): LBFGS has one")
            }
            try options.validate()
            group.options = options.resolved
        }
    }

    /// Throws: LBFGS evaluates the objective several times per step, so it needs the closure
    /// of ``step(_:)``.
    public func step() throws {
        throw OptimError(.invalidArgument, """
            LBFGS needs a closure: call step(_:) with a closure that computes the loss, sets the gradients \
            and returns the loss (LBFGS evaluates the objective several times per step)
            """)
    }

    /// Drops every gradient (`setToNone`) or fills them with zeros.
    public func zeroGrad(setToNone: Bool) {
        lock.withLock {
            for parameter in parameters { parameter.zeroGradient(setToNone: setToNone) }
        }
    }

    /// The state, kept on the first parameter as torch keeps it; nil for other parameters and
    /// before the first step.
    public func state(for parameter: Tensor) -> ParameterState? {
        lock.withLock {
            guard parameter === parameters[0], funcEvals > 0 else { return nil }
            var values: [String: Double] = ["func_evals": Double(funcEvals), "n_iter": Double(nIter)]
            values["t"] = t
            values["H_diag"] = hDiag
            values["prev_loss"] = prevLoss
            var tensors: [String: Tensor] = [:]
            if hasDirection { tensors["d"] = direction.flat }
            tensors["prev_flat_grad"] = prevFlatGrad
            return ParameterState(step: nIter, tensors: tensors, values: values)
        }
    }

    /// The keys of LBFGS's state, by torch's names.
    static let stateKeys: Set = ["func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "al", "H_diag",
                                 "prev_flat_grad", "prev_loss"]

    /// The state and options as torch's `state_dict()` holds them: the state on parameter 0
    /// (`func_evals`, `n_iter`, `d`, `t`, `old_dirs`, `old_stps`, `ro`, `al`, `H_diag`,
    /// `prev_flat_grad`, `prev_loss`) and one group.
    public func stateDict() -> OptimizerStateDict {
        lock.withLock { hooks.stateDict(of: self) { stateDict(lending: false) } }
    }

    /// The state dict, its tensors copies or, `lending`, the live ones (for a caller holding the lock).
    func stateDict(lending: Bool) -> OptimizerStateDict {
        func value(_ tensor: Tensor) -> StateValue { .tensor(lending ? TensorValue(borrowing: tensor) : TensorValue(tensor)) }
        var groupValues = group.options.torchValues
        groupValues["params"] = .list(parameters.indices.map { .integer($0) })
        guard funcEvals > 0 else { return OptimizerStateDict(state: [:], paramGroups: [groupValues]) }
        func scalar(_ value: Double) -> StateValue { .tensor(.scalar(value, dtype: dtype)) }
        var entry: [String: StateValue] = ["func_evals": .integer(funcEvals), "n_iter": .integer(nIter)]
        entry["d"] = hasDirection ? value(direction.flat) : .null
        entry["t"] = t.map { .number($0) } ?? .null
        entry["old_dirs"] = .list(oldDirs.map(value))
        entry["old_stps"] = .list(oldSteps.map(value))
        entry["ro"] = .list(ro.map(scalar))
        entry["al"] = .list(al.prefix(oldDirs.count).map(scalar))
        entry["H_diag"] = hDiag.map(scalar) ?? .null
        entry["prev_flat_grad"] = prevFlatGrad.map(value) ?? .null
        entry["prev_loss"] = prevLoss.map { .number($0) } ?? .null
        return OptimizerStateDict(state: [0: entry], paramGroups: [groupValues])
    }

    /// Restores what ``stateDict()`` (or torch's, converted) saved. Throws, changing nothing,
    /// when it does not fit: one group of as many parameters, vectors of the flat length.
    public func loadStateDict(_ dict: OptimizerStateDict) throws {
        try lock.withLock { try hooks.load(dict, into: self) { try loadState($0) } }
    }

    private func loadState(_ dict: OptimizerStateDict) throws {
        guard dict.paramGroups.count == 1, case .list(let ids)? = dict.paramGroups[0]["params"],
              ids.count == parameters.count else {
            throw OptimError(.invalidArgument, """
                the state dict must have one parameter group of \(parameters.count) parameters, as this LBFGS
                """)
        }
        // As the other optimizers' loads require: the ids name the parameters, each once.
        let savedIDs = ids.compactMap { id -> Int? in if case .integer(let id) = id { id } else { nil } }
        guard savedIDs.count == ids.count, Set(savedIDs).count == ids.count else {
            throw OptimError(.invalidArgument, "parameter ids in the state dict must be distinct integers")
        }
        let options = try group.options.applying(torchValues: dict.paramGroups[0])
        try options.validate()
        let entry: [String: StateValue]
        switch dict.state.count {
        case 0: entry = [:]
        case 1 where dict.state.keys.first == savedIDs.first:
            entry = dict.state.values.first ?? [:]
        default:
            throw OptimError(.invalidArgument, "LBFGS keeps its state on its first parameter only")
        }
        if let unknown = entry.keys.sorted().first(where: { !LBFGS.stateKeys.contains($0) }) {
            throw OptimError(.invalidArgument, "state \(unknown) is not state of LBFGS")
        }
        func present(_ name: String) -> Bool {
            if case .null? = entry[name] { return false }
            return entry[name] != nil
        }
        func vector(_ value: StateValue, _ name: String) throws -> Tensor {
            guard case .tensor(let tensor) = value, tensor.count == elementCount else {
                throw OptimError(.invalidArgument, "state \(name) must be a vector of \(elementCount) elements")
            }
            return try tensor.tensor(shape: [elementCount], dtype: dtype)
        }
        func list(_ name: String) throws -> [StateValue] {
            switch entry[name] {
            case nil, .null?: return []
            case .list(let items)?: return items
            default: throw OptimError(.invalidArgument, "state \(name) must be a list")
            }
        }
        func number(_ value: StateValue, _ name: String, finite: Bool = true) throws -> Double {
            guard let number = value.doubleValue, number.isFinite || !finite else {
                throw OptimError(.invalidArgument, "state \(name) must be a\(finite ? " finite" : "") number")
            }
            return number
        }
        func count(_ name: String) throws -> Int {
            guard let value = entry[name], let number = value.doubleValue, number >= 0, number < 1e15,
                  let count = Int(exactly: number) else {
                throw OptimError(.invalidArgument, "state \(name) must be a whole number of at least 0")
            }
            return count
        }

        // Torch's state is empty before the first step; after it, func_evals and n_iter always,
        // and from the first iteration on (n_iter > 0) the direction, step, curvature estimate,
        // previous gradient and loss as well: any other mix would leave the next step without
        // what it reads.
        let newFuncEvals = entry.isEmpty ? 0 : try count("func_evals")
        let newIterations = entry.isEmpty ? 0 : try count("n_iter")
        let iterationState = ["d", "t", "H_diag", "prev_flat_grad", "prev_loss"]
        for name in iterationState where present(name) != (newIterations > 0) {
            throw OptimError(.invalidArgument, newIterations > 0
                ? "state \(name) is missing: an LBFGS state with n_iter > 0 has d, t, H_diag, prev_flat_grad and prev_loss"
                : "state \(name) needs n_iter > 0: LBFGS has no \(name) before its first iteration")
        }
        let newDirection = try entry["d"].flatMap { present("d") ? try vector($0, "d") : nil }
        let newPrevFlatGrad = try entry["prev_flat_grad"].flatMap {
            present("prev_flat_grad") ? try vector($0, "prev_flat_grad") : nil
        }
        let newT = try entry["t"].flatMap { present("t") ? try number($0, "t") : nil }
        let newHDiag = try entry["H_diag"].flatMap { present("H_diag") ? try number($0, "H_diag") : nil }
        // A loss may be NaN or infinite: it is what the closure returned.
        let newPrevLoss = try entry["prev_loss"].flatMap {
            present("prev_loss") ? try number($0, "prev_loss", finite: false) : nil
        }
        let newDirs = try list("old_dirs").map { try vector($0, "old_dirs") }
        let newSteps = try list("old_stps").map { try vector($0, "old_stps") }
        let newRo = try list("ro").map { try number($0, "ro") }
        // `al` is scratch of the two-loop recursion; torch keeps unused entries as None.
        let newAl = try list("al").map { item -> Double in
            if case .null = item { return 0 }
            return try number(item, "al")
        }
        guard newDirs.count == newSteps.count, newRo.count == newDirs.count else {
            throw OptimError(.invalidArgument, """
                old_dirs, old_stps and ro must have as many entries, not \(newDirs.count), \(newSteps.count) and \
                \(newRo.count)
                """)
        }

        group.options = options.resolved
        funcEvals = newFuncEvals
        nIter = newIterations
        hasDirection = newDirection != nil
        if let newDirection { try direction.flat.copy(from: newDirection) }
        t = newT
        hDiag = newHDiag
        prevLoss = newPrevLoss
        prevFlatGrad = newPrevFlatGrad
        oldDirs = newDirs
        oldSteps = newSteps
        ro = newRo
        al = newAl
    }

    /// Runs up to `maxIter` iterations, calling `closure` to evaluate the loss and set the
    /// gradients; returns the loss of the first call.
    @discardableResult
    public func step(_ closure: () throws -> Double) throws -> Double {
        try lock.withLock {
            var loss = 0.0
            try hooks.runStep(self) { loss = try iterate(closure) }
            return loss
        }
    }

    /// The iterations of one step, without hooks.
    private func iterate(_ closure: () throws -> Double) throws -> Double {
        let options = group.options
        let maxEval = options.effectiveMaxEval
        let sign: Double = options.maximize ? -1 : 1

        let originalLoss = try closure()
        try gatherGradients()
        var loss = sign * originalLoss
        var currentEvals = 1
        funcEvals += 1

        var flatGrad = gathered.flat
        if isOptimal(flatGrad, options) { return originalLoss }

        let d = direction.flat
        var iteration = 0
        while iteration < options.maxIter {
            iteration += 1
            nIter += 1

            if nIter == 1 {
                copy(d, flatGrad)
                scale(d, -1)
                oldDirs.removeAll()
                oldSteps.removeAll()
                ro.removeAll()
                hDiag = 1
            } else {
                try updateMemory(flatGrad: flatGrad, d: d)
                twoLoopDirection(flatGrad: flatGrad, into: d)
            }
            hasDirection = true
            if prevFlatGrad == nil { prevFlatGrad = try Tensor.zeros([elementCount], dtype: dtype) }
            copy(prevFlatGrad!, flatGrad)
            prevLoss = loss

            var stepLength: TorchNumber = nIter == 1
                ? pythonMin(1.0, 1.0 / .tensor(sumAbs(flatGrad), dtype)) * .float(options.lr)
                : .float(options.lr)
            t = stepLength.value
            let gtd = dot(flatGrad, d)
            if gtd > .float(-options.toleranceChange) { break }

            var lineSearchEvals = 0
            var optimal = false
            switch options.lineSearch {
            case .strongWolfe:
                copyParameters(into: lineSearchStart)
                // The search may spend what is left of the step's evaluations, as torch bounds it.
                let result = try strongWolfe(closure, sign: sign, t: stepLength, d: d, f: loss, g: flatGrad, gtd: gtd,
                                             toleranceChange: options.toleranceChange,
                                             maxSteps: maxEval - currentEvals)
                loss = result.loss
                flatGrad = result.grad
                stepLength = result.t
                t = stepLength.value
                lineSearchEvals = result.evaluations
                addToParameters(stepLength.value, direction)
                optimal = isOptimal(flatGrad, options)
            case .none:
                addToParameters(stepLength.value, direction)
                if iteration != options.maxIter {
                    // No re-evaluation after the last iteration: in a stochastic setting the
                    // next step evaluates anyway.
                    loss = sign * (try closure())
                    try gatherGradients()
                    flatGrad = gathered.flat
                    optimal = isOptimal(flatGrad, options)
                    lineSearchEvals = 1
                }
            }
            currentEvals += lineSearchEvals
            funcEvals += lineSearchEvals

            if iteration == options.maxIter { break }
            if currentEvals >= maxEval { break }
            if optimal { break }
            // max |t·dᵢ|, a tensor: the product of the largest |dᵢ| and |t| rounded to the dtype.
            let largestStep = TorchNumber.tensor(maxAbs(d) * abs(dtype.rounded(stepLength.value)), dtype)
            if largestStep <= .float(options.toleranceChange) { break }
            if abs(loss - prevLoss!) < options.toleranceChange { break }
        }
        return originalLoss
    }

    /// Whether max |gᵢ| ≤ toleranceGrad, compared as torch compares its tensor with the float.
    private func isOptimal(_ flatGrad: Tensor, _ options: Options) -> Bool {
        TorchNumber.tensor(maxAbs(flatGrad), dtype) <= .float(options.toleranceGrad)
    }

    // MARK: The direction

    /// y = g − g_prev and s = t·d join the memory when y·s > 1e-10; H becomes y·s / y·y.
    private func updateMemory(flatGrad: Tensor, d: Tensor) throws {
        let y = try acquireFlat()
        copy(y, flatGrad)
        add(y, prevFlatGrad!, alpha: -1)
        let s = try acquireFlat()
        copy(s, d)
        scale(s, t!)
        let ys = dot(y, s)
        guard ys > 1e-10 else { return }
        // torch drops one pair per iteration when the memory is full; popping until there is
        // room also honours a history size lowered between steps.
        while oldDirs.count >= group.options.historySize {
            oldDirs.removeFirst()
            oldSteps.removeFirst()
            ro.removeFirst()
        }
        oldDirs.append(y)
        oldSteps.append(s)
        ro.append((1.0 / ys).value)
        hDiag = (ys / dot(y, y)).value
    }

    /// d ← −H̃ g by the two-loop recursion, with q and r in d's buffer.
    private func twoLoopDirection(flatGrad: Tensor, into d: Tensor) {
        let count = oldDirs.count
        if al.count < count { al.append(contentsOf: repeatElement(0, count: count - al.count)) }
        copy(d, flatGrad)
        scale(d, -1)
        for i in stride(from: count - 1, through: 0, by: -1) {
            al[i] = (dot(oldSteps[i], d) * .tensor(ro[i], dtype)).value
            add(d, oldDirs[i], alpha: -al[i])
        }
        scale(d, hDiag!)
        for i in 0..<count {
            let be = dot(oldDirs[i], d) * .tensor(ro[i], dtype)
            add(d, oldSteps[i], alpha: (.tensor(al[i], dtype) - be).value)
        }
    }

    // MARK: The strong-Wolfe line search

    private struct LineSearchResult {
        let loss: Double
        let grad: Tensor
        let t: TorchNumber
        let evaluations: Int
    }

    /// The loss and gradient at x + t·d, with the parameters restored to x afterwards.
    private func evaluate(_ closure: () throws -> Double, sign: Double, t: TorchNumber, d: Tensor) throws
        -> (TorchNumber, Tensor) {
        addToParameters(t.value, direction)
        defer { restoreParameters(from: lineSearchStart) }
        let loss = TorchNumber.float(sign * (try closure()))
        try gatherGradients()
        let grad = try acquireFlat()
        copy(grad, gathered.flat)
        return (loss, grad)
    }

    /// Finds a step t satisfying the strong Wolfe conditions along d from x (the parameters,
    /// saved in `lineSearchStart`), with loss f, gradient g and slope gtd = g·d at x: bracketing,
    /// then zooming with safeguarded cubic interpolation (Nocedal & Wright, algorithms 3.5 and
    /// 3.6, as minFunc and torch implement them). `maxSteps` bounds the search's iterations
    /// after its first evaluation: the step's evaluations not spent yet.
    private func strongWolfe(_ closure: () throws -> Double, sign: Double, t initialT: TorchNumber, d: Tensor,
                             f: Double, g: Tensor, gtd: TorchNumber, toleranceChange: Double,
                             maxSteps: Int) throws -> LineSearchResult {
        let c1: TorchNumber = 1e-4, c2: TorchNumber = 0.9
        let f = TorchNumber.float(f)
        let dNorm = TorchNumber.tensor(maxAbs(d), dtype)
        let gStart = try acquireFlat()
        copy(gStart, g)
        var t = initialT
        var (fNew, gNew) = try evaluate(closure, sign: sign, t: t, d: d)
        var evaluations = 1
        var gtdNew = dot(gNew, d)

        var tPrev: TorchNumber = 0, fPrev = f, gPrev = gStart, gtdPrev = gtd
        var done = false
        var iteration = 0
        var bracket: [TorchNumber] = [], bracketF: [TorchNumber] = [], bracketG: [Tensor] = []
        var bracketGtd: [TorchNumber] = []
        while iteration < maxSteps {
            if fNew > f + c1 * t * gtd || (iteration > 1 && fNew >= fPrev) {
                (bracket, bracketF, bracketG, bracketGtd) = ([tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew])
                break
            }
            if gtdNew.magnitude <= -c2 * gtd {
                (bracket, bracketF, bracketG) = ([t], [fNew], [gNew])
                done = true
                break
            }
            if gtdNew >= 0 {
                (bracket, bracketF, bracketG, bracketGtd) = ([tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew])
                break
            }
            // Extrapolate: a cubic step between 1.01 t − 0.01 t_prev and 10 t.
            let minStep = t + 0.01 * (t - tPrev)
            let maxStep = t * 10
            let previousT = t
            t = cubicMinimum(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, bounds: (minStep, maxStep))
            tPrev = previousT
            fPrev = fNew
            gPrev = gNew
            gtdPrev = gtdNew
            (fNew, gNew) = try evaluate(closure, sign: sign, t: t, d: d)
            evaluations += 1
            gtdNew = dot(gNew, d)
            iteration += 1
        }
        if iteration == maxSteps {
            (bracket, bracketF, bracketG) = ([0, t], [f, fNew], [gStart, gNew])
        }

        // Zoom: shrink the bracket until a point satisfies the conditions.
        var insufficientProgress = false
        // A bracket of one point (the conditions held at once) is its own low end, even when
        // its loss is NaN, which compares false (torch indexes past the list there).
        var (low, high) = bracket.count == 1 || bracketF[0] <= bracketF[1] ? (0, 1) : (1, 0)
        while !done && iteration < maxSteps {
            if (bracket[1] - bracket[0]).magnitude * dNorm < .float(toleranceChange) { break }
            t = cubicMinimum(bracket[0], bracketF[0], bracketGtd[0], bracket[1], bracketF[1], bracketGtd[1])

            // A trial too close to an end of the bracket (within a tenth of its length) is
            // moved to that distance from the end, when the last trial was too close as well or
            // this one is at or beyond an end.
            let upper = pythonMax(bracket[0], bracket[1]), lower = pythonMin(bracket[0], bracket[1])
            let margin = 0.1 * (upper - lower)
            if pythonMin(upper - t, t - lower) < margin {
                if insufficientProgress || t >= upper || t <= lower {
                    t = (t - upper).magnitude < (t - lower).magnitude ? upper - margin : lower + margin
                    insufficientProgress = false
                } else {
                    insufficientProgress = true
                }
            } else {
                insufficientProgress = false
            }

            (fNew, gNew) = try evaluate(closure, sign: sign, t: t, d: d)
            evaluations += 1
            gtdNew = dot(gNew, d)
            iteration += 1

            if fNew > f + c1 * t * gtd || fNew >= bracketF[low] {
                // Not enough decrease, or no lower than the low end: the new high end.
                bracket[high] = t
                bracketF[high] = fNew
                bracketG[high] = gNew
                bracketGtd[high] = gtdNew
                (low, high) = bracketF[0] <= bracketF[1] ? (0, 1) : (1, 0)
            } else {
                if gtdNew.magnitude <= -c2 * gtd {
                    done = true
                } else if gtdNew * (bracket[high] - bracket[low]) >= 0 {
                    bracket[high] = bracket[low]
                    bracketF[high] = bracketF[low]
                    bracketG[high] = bracketG[low]
                    bracketGtd[high] = bracketGtd[low]
                }
                bracket[low] = t
                bracketF[low] = fNew
                bracketG[low] = gNew
                bracketGtd[low] = gtdNew
            }
        }
        return LineSearchResult(loss: bracketF[low].value, grad: bracketG[low], t: bracket[low], evaluations: evaluations)
    }

    // MARK: Vector operations (flat buffers, already validated)

    private func copy(_ x: Tensor, _ y: Tensor) {
        launcher.elementwise(.copy, [x], [y], execution: execution)
    }
    private func scale(_ x: Tensor, _ factor: Double) {
        launcher.elementwise(.scale, [x], a: factor, execution: execution)
    }
    private func add(_ x: Tensor, _ y: Tensor, alpha: Double) {
        launcher.elementwise(.add, [x], [y], a: alpha, execution: execution)
    }
    /// x · y as torch's 0-dimensional result: in float32 in the order of torch's BLAS, in
    /// float64 in the engine's reduction (which is that order), otherwise accumulated in Double
    /// and rounded to the dtype.
    private func dot(_ x: Tensor, _ y: Tensor) -> TorchNumber {
        if x.dtype == .float32 { return .tensor(Kernels.torchOrderDotFloat32(x, y), dtype) }
        return .tensor(launcher.reduce(.dot, [x], [y], execution: execution).combined, dtype)
    }
    private func maxAbs(_ x: Tensor) -> Double {
        launcher.reduce(.maxAbs, [x], execution: execution).combined
    }
    /// Σ|xᵢ| of a flat buffer, in the order torch sums it where that order is known (float32 and
    /// float64): the first step length depends on it.
    private func sumAbs(_ x: Tensor) -> Double {
        switch x.dtype {
        case .float32, .float64: Kernels.torchOrderSumAbs(x)
        default: launcher.reduce(.sumAbs, [x], execution: execution).combined
        }
    }

    /// The gradients into `gathered` (zero for a parameter without one), negated to maximize.
    private func gatherGradients() throws {
        var views: [Tensor] = [], grads: [Tensor] = [], missing: [Tensor] = []
        for (index, parameter) in parameters.enumerated() {
            guard parameter.sparseGrad == nil else {
                throw OptimError(.gradientMismatch, """
                    parameter \(index) (\(parameter)) has a sparse gradient: LBFGS does not support sparse gradients
                    """)
            }
            guard let grad = parameter.grad else {
                missing.append(gathered.views[index])
                continue
            }
            guard grad.shape == parameter.shape, grad.dtype == parameter.dtype else {
                throw OptimError(.gradientMismatch, """
                    the gradient of parameter \(index) (\(parameter)) is a \(grad.dtype) tensor of shape \(grad.shape); \
                    it must have the parameter's dtype and shape
                    """)
            }
            views.append(gathered.views[index])
            grads.append(grad)
        }
        launcher.elementwise(.copy, views, grads, execution: execution)
        launcher.elementwise(.zero, missing, execution: execution)
        if group.options.maximize { scale(gathered.flat, -1) }
    }

    /// parameters ← parameters + t · buffer.
    private func addToParameters(_ t: Double, _ buffer: FlatBuffer) {
        launcher.elementwise(.add, parameters, buffer.views, a: t, execution: execution)
    }
    private func copyParameters(into buffer: FlatBuffer) {
        launcher.elementwise(.copy, buffer.views, parameters, execution: execution)
    }
    private func restoreParameters(from buffer: FlatBuffer) {
        launcher.elementwise(.copy, parameters, buffer.views, execution: execution)
    }

    /// A flat buffer that nothing else refers to, or a new one.
    private func acquireFlat() throws -> Tensor {
        for index in pool.indices where isKnownUniquelyReferenced(&pool[index]) {
            return pool[index]
        }
        // The element count and dtype come from existing parameters, so this cannot fail.
        let buffer = try Tensor.zeros([elementCount], dtype: dtype)
        pool.append(buffer)
        return buffer
    }
}

/// The minimizer of the cubic that interpolates (x1, f1, slope g1) and (x2, f2, slope g2),
/// clamped to `bounds` (default: between x1 and x2); the middle of the bounds when the cubic
/// has no minimizer. Each operation in torch's order, on its mix of tensors and floats.
func cubicMinimum(_ x1: TorchNumber, _ f1: TorchNumber, _ g1: TorchNumber, _ x2: TorchNumber, _ f2: TorchNumber,
                  _ g2: TorchNumber, bounds: (TorchNumber, TorchNumber)? = nil) -> TorchNumber {
    let (lower, upper) = bounds ?? (x1 <= x2 ? (x1, x2) : (x2, x1))
    let d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    let d2Square = d1 * d1 - g1 * g2
    guard d2Square >= 0 else { return (lower + upper) / 2.0 }
    let d2 = d2Square.squareRoot()
    let minimizer = x1 <= x2
        ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return pythonMin(pythonMax(minimizer, lower), upper)
}

/// A flat 1-D buffer and a view of it per parameter, shaped like the parameter.
private struct FlatBuffer {
    let flat: Tensor
    let views: [Tensor]

    init(shapes: [[Int]], dtype: DType) throws {
        let counts = try shapes.map(Tensor.elementCount)
        let total = counts.reduce(0, +)
        let flat = try Tensor.zeros([total], dtype: dtype)
        var offset = 0
        var views: [Tensor] = []
        for (shape, count) in zip(shapes, counts) {
            // The views borrow the flat buffer's memory; the buffer outlives them (both are
            // held by the optimizer).
            views.append(Tensor(shape: shape, dtype: dtype,
                                storage: TensorStorage(borrowing: flat.storage.base + offset * dtype.byteWidth,
                                                       onRelease: nil)))
            offset += count
        }
        self.flat = flat
        self.views = views
    }
}

extension LBFGS: LendsStateDict {
    func withLentStateDict<Result>(_ body: (OptimizerStateDict) throws -> Result) throws -> Result {
        try lock.withLock { try body(hooks.stateDict(of: self) { stateDict(lending: true) }) }
    }
}
