extension ElementwiseEngine {
    /// The state and options as torch's `state_dict()` holds them.
    func stateDict(lending: Bool = false) -> OptimizerStateDict {
        var state: [Int: [String: StateValue]] = [:]
        for index in parameters.indices where holdsState(index) {
            var entry: [String: StateValue] = [:]
            if Algorithm.keepsStepCount {
                entry["step"] = Algorithm.stepIsInteger ? .integer(stepCounts[index])
                    : .tensor(.scalar(Double(stepCounts[index])))
            }
            for slot in 0..<slotCount {
                if let tensor = slots[index * slotCount + slot] {
                    entry[Algorithm.stateNames[slot]] = .tensor(lending ? TensorValue(borrowing: tensor) : TensorValue(tensor))
                }
            }
            // Scalar state that belongs to the group is written with the group.
            if let tensorState = tensorStates[index], !Algorithm.countsStepsPerGroup {
                // torch keeps such scalars in float32 tensors (ASGD's, NAdam's, which this
                // library rounds as torch does); one that float32 cannot hold exactly (Lion's
                // initial lr, a Python float in its reference) is written as a number.
                for (name, value) in tensorState.values {
                    entry[name] = DType.float32.rounded(value) == value || value.isNaN ? .tensor(.scalar(value))
                        : .number(value)
                }
            }
            state[index] = entry
        }
        var paramGroups = torchParamGroups(groups)
        if Algorithm.countsStepsPerGroup {
            for group in groups.indices {
                paramGroups[group]["step"] = .integer(groupSteps[group])
                for (name, value) in groupStates[group].values { paramGroups[group][name] = .number(value) }
            }
        }
        return OptimizerStateDict(state: state, paramGroups: paramGroups)
    }

    /// Replaces the options and the state with those of `dict`, matching its parameters to
    /// this optimizer's in order, as torch's `load_state_dict` does. State tensors are
    /// converted to their parameter's dtype. Checks everything first: on error nothing changes.
    func loadStateDict(_ dict: OptimizerStateDict) throws {
        let (savedIndex, options, names) = try matchParamGroups(dict, groups, validate: Algorithm.validate)

        var newSteps = Array(repeating: 0, count: parameters.count)
        var newSlots = [Tensor?](repeating: nil, count: parameters.count * slotCount)
        var newTensorStates = [Algorithm.TensorState?](repeating: nil, count: parameters.count)
        let saved = try savedParameterStates(dict, indexOfSavedID: savedIndex,
                                             known: Algorithm.stateNames + Algorithm.TensorState.names,
                                             keepsStepCount: Algorithm.keepsStepCount)
        for (id, index, entry, step) in saved {
            let parameter = parameters[index]
            // torch keeps no count for SGD; one update at least made the state.
            newSteps[index] = step ?? 1
            for (slot, name) in Algorithm.stateNames.enumerated() {
                guard let value = entry[name] else { continue }
                guard case .tensor(let tensor) = value, tensor.shape == parameter.shape else {
                    throw OptimError(.invalidArgument, """
                        state \(name) of parameter \(id) must be a tensor of shape \(parameter.shape), like its parameter
                        """)
                }
                newSlots[index * slotCount + slot] = try tensor.tensor(shape: parameter.shape, dtype: parameter.dtype)
            }
            // After an update, every state the options use exists (torch fails on a missing one);
            // a fresh zero in its place would restart a moment under the old bias corrections.
            if let step, step > 0, !Algorithm.countsStepsPerGroup {
                for (slot, name) in Algorithm.stateNames.enumerated()
                where entry[name] == nil && Algorithm.usesSlot(slot, options[groupOf[index]]) {
                    throw OptimError(.invalidArgument, """
                        parameter \(id) of the state dict has made \(step) updates but has no \(name), which \
                        \(Algorithm.name) keeps under its options
                        """)
                }
            }
            var values: [String: Double] = [:]
            for name in Algorithm.TensorState.names where !Algorithm.countsStepsPerGroup {
                guard let value = entry[name]?.doubleValue else {
                    throw OptimError(.invalidArgument, "parameter \(id) of the state dict has no \(name)")
                }
                values[name] = value
            }
            if !Algorithm.countsStepsPerGroup { newTensorStates[index] = Algorithm.TensorState(values: values) }
        }

        // The loaded values go into state laid out as the engine lays it out itself, so that
        // packed parameters still run as one after a checkpoint is loaded.
        for slot in 0..<slotCount {
            let loaded = parameters.indices.filter { newSlots[$0 * slotCount + slot] != nil }
            for (index, tensor) in zip(loaded, try stateTensors(for: loaded)) {
                guard let values = newSlots[index * slotCount + slot] else { continue }
                try tensor.copy(from: values)
                newSlots[index * slotCount + slot] = tensor
            }
        }

        var newGroupSteps = groupSteps
        var newGroupStates = groupStates
        if Algorithm.countsStepsPerGroup {
            for (group, saved) in dict.paramGroups.enumerated() {
                guard let step = saved["step"]?.doubleValue, step >= 0, step == step.rounded(), step < 1e15 else {
                    throw OptimError(.invalidArgument, "parameter group \(group) of the state dict has no valid step count")
                }
                var values: [String: Double] = [:]
                for name in Algorithm.TensorState.names {
                    guard let value = saved[name]?.doubleValue, value.isFinite else {
                        throw OptimError(.invalidArgument, "parameter group \(group) of the state dict has no finite \(name)")
                    }
                    values[name] = value
                }
                newGroupSteps[group] = Int(step)
                newGroupStates[group] = Algorithm.TensorState(values: values)
            }
        }

        groups.adopt(options: options, names: names)
        groupSteps = newGroupSteps
        groupStates = newGroupStates
        stepCounts = newSteps
        slots = newSlots
        tensorStates = newTensorStates
        invalidateLaunch()
    }
}
