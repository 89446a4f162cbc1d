extension PerTensorEngine: ElementwiseCore {}

/// The optimizers whose update of a tensor reads the whole tensor (``Adafactor``, ``Muon``):
/// ``ElementwiseOptimizer``'s groups, state and state dicts, on the per-tensor engine. A
/// tensor's update runs on one worker, start to end; a step spreads the tensors over threads.
/// Both implementations give the same bits: `forLoop` updates one tensor after the other on the
/// calling thread, `multiTensor` spreads them over ``Execution/threads`` when the step's work
/// passes ``Execution/serialThreshold``.
public typealias PerTensorOptimizer<Options: TorchNamedOptions> = ElementwiseOptimizer<Options>
