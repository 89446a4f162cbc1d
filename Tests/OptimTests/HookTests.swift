import Foundation
import Optim
import Testing

/// Optimizer hooks (torch's step, state-dict and load-state-dict hooks, removable through their
/// handles) and parameter names kept in state dicts.
@Suite struct HookTests {
    /// Every optimizer of the catalog calls its step hooks once a step, pre before post, and
    /// none once their handles are removed.
    @Test(arguments: OptimizerCatalog.entries)
    func stepHooksRunAroundEveryStepUntilRemoved(entry: OptimizerEntry) throws {
        let parameters = try CheckpointTests.parameters(5).map {
            entry.singleDType ? try Tensor($0.toArray(), shape: $0.shape, dtype: .float64) : $0
        }
        let optimizer = try entry.make(parameters)
        var calls: [String] = []
        let pre = optimizer.hooks.register(.stepPre { _ in calls.append("pre") })
        let post = optimizer.hooks.register(.stepPost { _ in calls.append("post") })
        var random = TestRandom(seed: 2)
        for _ in 0..<2 { try CheckpointTests.step(entry, optimizer, parameters, &random) }
        #expect(calls == ["pre", "post", "pre", "post"])
        pre.remove()
        post.remove()
        post.remove()
        try CheckpointTests.step(entry, optimizer, parameters, &random)
        #expect(calls.count == 4)
    }

    /// A pre-hook that replaces the gradients: the step is the one those gradients give.
    @Test func aStepPreHookMayReplaceTheGradients() throws {
        let hooked = try Tensor([1, -2, 3, 0.5], dtype: .float32), plain = try hooked.clone()
        hooked.grad = try Tensor([9, 9, 9, 9])
        plain.grad = try Tensor([0.1, 0.2, -0.3, 0.4])
        let withHook = try Adam([hooked]), without = try Adam([plain])
        withHook.hooks.register(.stepPre { _ in hooked.grad = try Tensor([0.1, 0.2, -0.3, 0.4]) })
        for _ in 0..<3 {
            try withHook.step()
            try without.step()
        }
        #expect(bytes(of: hooked) == bytes(of: plain))
    }

    /// A pre-hook that throws stops the step: parameters and state stay as they were.
    @Test func aThrowingStepPreHookChangesNothing() throws {
        let parameter = try Tensor([1, 2, 3], dtype: .float32)
        parameter.grad = try Tensor([0.5, -0.5, 0.25])
        let adam = try Adam([parameter])
        try adam.step()
        let before = snapshot([parameter]) { adam.state(for: $0) }
        var postCalls = 0
        adam.hooks.register(.stepPre { _ in throw OptimError(.invalidArgument, "a gradient is not finite") })
        adam.hooks.register(.stepPost { _ in postCalls += 1 })
        #expect(throws: OptimError.self) { try adam.step() }
        #expect(snapshot([parameter]) { adam.state(for: $0) } == before)
        #expect(postCalls == 0)
    }

    /// State-dict hooks: the pre-hook runs first, the post-hook may change what is returned,
    /// also in a checkpoint file; removed, they change nothing.
    @Test func stateDictHooksSeeAndMayChangeTheDict() throws {
        let parameter = try Tensor([1, 2], dtype: .float32)
        parameter.grad = try Tensor([1, 1])
        let sgd = try SGD([parameter], options: .init(lr: 0.1, momentum: 0.9))
        try sgd.step()
        var order: [String] = []
        let pre = sgd.hooks.register(.stateDictPre { _ in order.append("pre") })
        let post = sgd.hooks.register(.stateDictPost { _, dict in
            order.append("post")
            dict.paramGroups[0]["note"] = "saved with a hook"
        })
        #expect(sgd.stateDict().paramGroups[0]["note"] == "saved with a hook")
        #expect(order == ["pre", "post"])
        let path = CheckpointTests.temporaryPath("hooked.safetensors")
        try Checkpoint.save(sgd, to: path)
        #expect(try Checkpoint.read(from: path).stateDict.paramGroups[0]["note"] == "saved with a hook")
        pre.remove()
        post.remove()
        #expect(sgd.stateDict().paramGroups[0]["note"] == nil)
        #expect(order == ["pre", "post", "pre", "post"])
    }

    /// A load pre-hook may rewrite the dict before it is checked (here, torch's `lr` under
    /// another name); a post-hook runs after; a pre-hook that throws leaves everything as it was.
    @Test func loadHooksMayRewriteTheDictOrRefuseIt() throws {
        let parameter = try Tensor([1, 2], dtype: .float32)
        parameter.grad = try Tensor([1, 1])
        let adam = try Adam([parameter], options: .init(lr: 0.01))
        try adam.step()
        var saved = adam.stateDict()
        saved.paramGroups[0]["learning_rate"] = 0.5
        var loadedCalls = 0
        let rename = adam.hooks.register(.loadStateDictPre { _, dict in
            for index in dict.paramGroups.indices {
                if let lr = dict.paramGroups[index].removeValue(forKey: "learning_rate") { dict.paramGroups[index]["lr"] = lr }
            }
        })
        adam.hooks.register(.loadStateDictPost { _ in loadedCalls += 1 })
        try adam.loadStateDict(saved)
        #expect(adam.paramGroups[0].options.lr == 0.5)
        #expect(loadedCalls == 1)

        rename.remove()
        let before = snapshot([parameter]) { adam.state(for: $0) }
        adam.hooks.register(.loadStateDictPre { _, _ in throw OptimError(.invalidArgument, "refused by a hook") })
        saved.paramGroups[0]["learning_rate"] = nil
        saved.paramGroups[0]["lr"] = 0.125
        #expect(throws: OptimError.self) { try adam.loadStateDict(saved) }
        #expect(adam.paramGroups[0].options.lr == 0.5)
        #expect(snapshot([parameter]) { adam.state(for: $0) } == before)
        #expect(loadedCalls == 1)
    }

    /// torch's `Adam/named-parameters` case: groups built from named parameters carry
    /// `param_names` in the state dict, in torch's layout; loading takes the saved names.
    @Test func namedParametersKeepTheirNamesInStateDicts() throws {
        let named = try #require(StateDictTests.golden.cases.first { $0.id == "Adam/named-parameters" })
        let torchGroups = named.stateDict.paramGroups
        var parameters = try named.params.map { try Tensor.zeros($0.shape) }.makeIterator()
        let groups: [ParameterGroupSpec<Adam.Options>] = try torchGroups.map { group in
            guard case .list(let items)? = group["param_names"] else { throw OptimError(.invalidArgument, "no names") }
            let names = items.compactMap { if case .string(let name) = $0 { name } else { nil } }
            return .init(named: names.map { ($0, parameters.next()!) })
        }
        let adam = try Adam(groups: groups)
        let dict = adam.stateDict()
        for (ours, torchs) in zip(dict.paramGroups, torchGroups) {
            #expect(ours["param_names"] == torchs["param_names"])
            #expect(ours["params"] == torchs["params"])
        }

        var renamed = dict
        renamed.paramGroups[0]["param_names"] = .list(Array(repeating: "renamed", count: adam.paramGroups[0].parameters.count))
        try adam.loadStateDict(renamed)
        #expect(adam.paramGroups[0].names == Array(repeating: "renamed", count: adam.paramGroups[0].parameters.count))

        var wrong = dict
        wrong.paramGroups[0]["param_names"] = ["only one"]
        #expect(throws: OptimError.self) { try adam.loadStateDict(wrong) }
        #expect(adam.paramGroups[0].names?.first == "renamed")
    }
}
