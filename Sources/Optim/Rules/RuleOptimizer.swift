/// An optimizer that runs a rule written in Swift (``ElementwiseRule``) on the library's
/// engine, with the API of the built-in optimizers: parameter groups with their own options,
/// `step`, `zeroGrad`, `state(for:)`, state dicts in torch's layout (the rule's state names,
/// `step` as a float32 tensor, its options under ``TorchFieldOptions``'s names), schedulers
/// (its `lr`), threads on either backend and both code paths with the same bits.
public final class RuleOptimizer<Rule: ElementwiseRule>: ElementwiseOptimizer<Rule.Options>, @unchecked Sendable {
    /// The options of a group built without changes.
    public static var defaultOptions: Rule.Options { Rule.Options() }

    override class var recipe: EngineRecipe<Options>? { .swiftRule(Rule.self) }
}

/// What a Swift rule's scalar block starts with: the rule's loops and where its scalars are.
struct SwiftRuleHeader {
    let rule: any ElementwiseRuleSegments.Type
    let scalarsOffset: Int
}

/// The scalar block of a Swift rule's launch tensors.
struct SwiftRuleScalars<Rule: ElementwiseRule> {
    var header: SwiftRuleHeader
    var scalars: Rule.Scalars

    init(_ scalars: Rule.Scalars) {
        header = SwiftRuleHeader(rule: Rule.self, scalarsOffset: MemoryLayout<Self>.offset(of: \.scalars)!)
        self.scalars = scalars
    }
}

/// A Swift rule seen by the engine as one of its algorithms.
enum SwiftRuleAlgorithm<Rule: ElementwiseRule>: ElementwiseAlgorithm {
    typealias Options = Rule.Options
    typealias Scalars = SwiftRuleScalars<Rule>
    typealias TensorState = Rule.ScalarState

    static var name: String { Rule.name }
    static var stateNames: [String] { Rule.stateNames }

    static var rule: KernelRule<Scalars> { KernelRule(swiftRuleOf: Scalars.self) }

    static var countsStepsPerGroup: Bool { Rule.stepCounting == .perGroup }
    static func initializationFlags(_ options: Options) -> UInt32 { 1 }
    static func validate(_ options: Options) throws { try Rule.validate(options) }
    static func usesSlot(_ slot: Int, _ options: Options) -> Bool { Rule.usesSlot(slot, options) }

    static func prepare(_ options: Options, step: Int, state: inout TensorState) -> (flags: UInt32, scalars: Scalars) {
        (0, Scalars(Rule.scalars(options, step: step, state: &state)))
    }

    static func initialTensorState(_ options: Options, defaults: Options) -> TensorState {
        Rule.initialScalarState(options, defaults: defaults)
    }
}
