extension PerTensorEngine {
    /// The state and options as torch's `state_dict()` holds them.
    func stateDict(lending: Bool = false) -> OptimizerStateDict {
        var state: [Int: [String: StateValue]] = [:]
        for index in parameters.indices where stepCounts[index] > 0 {
            var entry: [String: StateValue] = [:]
            if Algorithm.keepsStepCount { entry["step"] = .tensor(.scalar(Double(stepCounts[index]))) }
            for slot in 0..<slotCount {
                if let tensor = slots[index * slotCount + slot] {
                    entry[Algorithm.stateNames[slot]] = .tensor(lending ? TensorValue(borrowing: tensor) : TensorValue(tensor))
                }
            }
            state[index] = entry
        }
        return OptimizerStateDict(state: state, paramGroups: torchParamGroups(groups))
    }

    /// Replaces the options and the state with those of `dict`, matching its parameters to this
    /// optimizer's in order, as torch's `load_state_dict` does. State tensors must have the
    /// shape this optimizer gives them (a factored parameter's `row_var` is `[..., rows, 1]`)
    /// and are converted to their parameter's dtype. Checks everything first: on error nothing
    /// changes.
    func loadStateDict(_ dict: OptimizerStateDict) throws {
        let (savedIndex, options, names) = try matchParamGroups(dict, groups, validate: Algorithm.validate)

        var newSteps = Array(repeating: 0, count: parameters.count)
        var newSlots = [Tensor?](repeating: nil, count: parameters.count * slotCount)
        let saved = try savedParameterStates(dict, indexOfSavedID: savedIndex, known: Algorithm.stateNames,
                                             keepsStepCount: Algorithm.keepsStepCount)
        for (id, index, entry, step) in saved {
            let parameter = parameters[index]
            // torch keeps no count; one update at least made the state.
            newSteps[index] = step ?? (entry.isEmpty ? 0 : 1)
            for (slot, name) in Algorithm.stateNames.enumerated() {
                guard let value = entry[name] else { continue }
                guard let shape = Algorithm.stateShape(slot: slot, parameterShape: parameter.shape) else {
                    throw OptimError(.invalidArgument, """
                        parameter \(id) of the state dict has state \(name), which a parameter of shape \
                        \(parameter.shape) does not have
                        """)
                }
                guard case .tensor(let tensor) = value, tensor.shape == shape else {
                    throw OptimError(.invalidArgument, "state \(name) of parameter \(id) must be a tensor of shape \(shape)")
                }
                newSlots[index * slotCount + slot] = try tensor.tensor(shape: shape, dtype: parameter.dtype)
            }
            // After an update, every state tensor of the parameter's shape exists (torch fails
            // on a missing one).
            if let step, step > 0 {
                for (slot, name) in Algorithm.stateNames.enumerated()
                where entry[name] == nil && Algorithm.stateShape(slot: slot, parameterShape: parameter.shape) != nil {
                    throw OptimError(.invalidArgument, """
                        parameter \(id) of the state dict has made \(step) updates but has no \(name), which a \
                        parameter of shape \(parameter.shape) keeps
                        """)
                }
            }
        }

        groups.adopt(options: options, names: names)
        restore(steps: newSteps, slots: newSlots)
    }
}
