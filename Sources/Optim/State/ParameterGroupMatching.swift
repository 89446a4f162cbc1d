/// The `param_groups` of a state dict: each group's options by torch's names, and `params`,
/// the indices of its parameters counted over the groups in order.
func torchParamGroups<Options: TorchNamedOptions>(_ groups: [ParameterGroup<Options>]) -> [[String: StateValue]] {
    var first = 0
    return groups.map { group in
        var values = group.options.torchValues
        values["params"] = .list((first..<(first + group.parameters.count)).map { .integer($0) })
        if let names = group.names { values["param_names"] = .list(names.map(StateValue.string)) }
        first += group.parameters.count
        return values
    }
}

/// Matches a state dict's groups to `groups` in order, as torch's `load_state_dict` does: as
/// many groups, as many parameters in each. Returns, for each saved parameter id, the index of
/// the parameter it names here, and each group's options with the dict's applied (checked by
/// `validate`). Changes nothing.
func matchParamGroups<Options: TorchNamedOptions>(
    _ dict: OptimizerStateDict, _ groups: [ParameterGroup<Options>], validate: (Options) throws -> Void
) throws -> (indexOfSavedID: [Int: Int], options: [Options], names: [[String]?]) {
    guard dict.paramGroups.count == groups.count else {
        throw OptimError(.invalidArgument, """
            the state dict has \(dict.paramGroups.count) parameter groups; this optimizer has \(groups.count)
            """)
    }
    var indexOfSavedID: [Int: Int] = [:]
    var options: [Options] = []
    var names: [[String]?] = []
    var next = 0
    for (number, (saved, group)) in zip(dict.paramGroups, groups).enumerated() {
        guard case .list(let ids)? = saved["params"] else {
            throw OptimError(.invalidArgument, "parameter group \(number) of the state dict has no params list")
        }
        guard ids.count == group.parameters.count else {
            throw OptimError(.invalidArgument, """
                parameter group \(number) of the state dict has \(ids.count) parameters; \
                the optimizer's has \(group.parameters.count)
                """)
        }
        for id in ids {
            guard case .integer(let id) = id, indexOfSavedID.updateValue(next, forKey: id) == nil else {
                throw OptimError(.invalidArgument, "parameter ids in the state dict must be distinct integers")
            }
            next += 1
        }
        let loaded = try group.options.applying(torchValues: saved)
        try validate(loaded)
        options.append(loaded)
        names.append(try savedNames(saved, count: ids.count, group: number))
    }
    return (indexOfSavedID, options, names)
}

/// A saved group's `param_names`: nil where it has none, else one string per parameter.
func savedNames(_ saved: [String: StateValue], count: Int, group number: Int) throws -> [String]? {
    guard let value = saved["param_names"] else { return nil }
    guard case .list(let items) = value, items.count == count else {
        throw OptimError(.invalidArgument, "param_names of parameter group \(number) must list one name per parameter")
    }
    return try items.map { item in
        guard case .string(let name) = item else {
            throw OptimError(.invalidArgument, "param_names of parameter group \(number) must be strings")
        }
        return name
    }
}

extension Array {
    /// Loaded options, and the saved names where the dict has them (torch keeps a group's
    /// names otherwise).
    mutating func adopt<Options>(options: [Options], names: [[String]?]) where Element == ParameterGroup<Options> {
        for number in indices {
            self[number].options = options[number]
            if let saved = names[number] { self[number].names = saved }
        }
    }
}

/// The dict's per-parameter state, checked: every id names a parameter of a group, every key
/// is one of `known` (plus `step`), and where the optimizer keeps a step count it is a whole
/// number of updates. Returns each saved parameter's id, the index of the parameter it belongs
/// to, its state and its step count (nil when the optimizer keeps none). Changes nothing.
func savedParameterStates(
    _ dict: OptimizerStateDict, indexOfSavedID: [Int: Int], known: [String], keepsStepCount: Bool
) throws -> [(id: Int, index: Int, entry: [String: StateValue], step: Int?)] {
    let known = Set(known + ["step"])
    return try dict.state.map { id, entry in
        guard let index = indexOfSavedID[id] else {
            throw OptimError(.invalidArgument, "the state dict has state for parameter \(id), which no group lists")
        }
        if let unknown = entry.keys.first(where: { !known.contains($0) }) {
            throw OptimError(.invalidArgument, "state \(unknown) of parameter \(id) is not state of this optimizer")
        }
        guard keepsStepCount else { return (id, index, entry, nil) }
        guard let step = entry["step"]?.doubleValue, step >= 0, step == step.rounded(), step < 1e15 else {
            throw OptimError(.invalidArgument, "parameter \(id) of the state dict has no valid step count")
        }
        return (id, index, entry, Int(step))
    }
}
