extension LBFGS.Options: TorchNamedOptions {
    /// The options by torch's names (`max_iter`, `max_eval`, `line_search_fn`, …).
    public var torchValues: [String: StateValue] {
        [
            "lr": .number(lr), "max_iter": .integer(maxIter),
            "max_eval": .integer(maxEval ?? maxIter * 5 / 4),
            "tolerance_grad": .number(toleranceGrad), "tolerance_change": .number(toleranceChange),
            "history_size": .integer(historySize),
            "line_search_fn": lineSearch == .none ? .null : .string(lineSearch.rawValue),
            "maximize": .bool(maximize),
        ]
    }

    /// These options with every option `values` names; throws when a value has the wrong type.
    public func applying(torchValues values: [String: StateValue]) throws -> Self {
        func integer(_ name: String) throws -> Int? {
            guard let value = values[name] else { return nil }
            guard let number = value.doubleValue, let integer = Int(exactly: number) else {
                throw OptimError(.invalidArgument, "option \(name) is \(value); it must be an integer")
            }
            return integer
        }
        func number(_ name: String) throws -> Double? {
            guard let value = values[name] else { return nil }
            guard let number = value.doubleValue else {
                throw OptimError(.invalidArgument, "option \(name) is \(value); it must be a number")
            }
            return number
        }
        var options = self
        if let v = try number("lr") { options.lr = v }
        if let v = try integer("max_iter") { options.maxIter = v }
        if let value = values["max_eval"] { options.maxEval = value == .null ? nil : try integer("max_eval") }
        if let v = try number("tolerance_grad") { options.toleranceGrad = v }
        if let v = try number("tolerance_change") { options.toleranceChange = v }
        if let v = try integer("history_size") { options.historySize = v }
        switch values["line_search_fn"] {
        case nil: break
        case .null?: options.lineSearch = .none
        case .string(let name)?:
            guard let known = LBFGS.LineSearch(rawValue: name), known != .none else {
                throw OptimError(.invalidOption, "line_search_fn '\(name)' is not supported: only 'strong_wolfe' or None")
            }
            options.lineSearch = known
        case let value?:
            throw OptimError(.invalidArgument, "option line_search_fn is \(value); it must be a name or None")
        }
        switch values["maximize"] {
        case nil: break
        case .bool(let flag)?: options.maximize = flag
        // Readers that cannot tell a JSON boolean from a number give 0 or 1.
        case .integer(0)?, .number(0)?: options.maximize = false
        case .integer(1)?, .number(1)?: options.maximize = true
        case let value?: throw OptimError(.invalidArgument, "option maximize is \(value); it must be True or False")
        }
        return options
    }
}
