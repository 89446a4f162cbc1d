#if canImport(Glibc)
import Glibc
#endif
import Optim

// A package that takes the library by version: Adam, and a rule of its own stepped on the
// engine, whose multi-tensor path must equal the for-loop path bit for bit on 1, 2 and 3
// threads and both backends, with no serial threshold and small chunks so that threads, chunk
// boundaries and vector tails are all crossed.

let weight = try Tensor([1.0, -2.0, 3.0])
weight.grad = try Tensor([0.5, 0.5, -0.5])
let adam = try Adam([weight], options: .init(lr: 0.1))
try adam.step()
// The first Adam step moves every element by lr against the gradient's sign.
let expected: [Double] = [0.9, -2.1, 3.1]
guard zip(weight.toArray(), expected).allSatisfy({ abs($0 - $1) < 1e-6 }) else {
    print("unexpected parameters after one Adam step: \(weight.toArray())")
    exit(1)
}

func run(_ execution: Execution, _ implementation: Implementation) throws -> [UInt64] {
    let sizes = [1, 15, 16, 17, 100, 1000, 4099]
    var seed: UInt64 = 1
    func next() -> Double {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return Double(Int64(bitPattern: seed) >> 11) * 0x1p-52
    }
    let dtypes: [DType] = [.float32, .float64, .bfloat16, .float16]
    let parameters = try sizes.enumerated().map { number, size in
        try Tensor((0..<size).map { _ in next() }, dtype: dtypes[number % dtypes.count])
    }
    let optimizer = try RuleOptimizer<SignedMomentum>(groups: [
        .init(Array(parameters.prefix(3))),
        .init(Array(parameters.dropFirst(3))) { $0.weightDecay = 0.01 },
    ], defaults: .init(lr: 0.01), execution: execution, implementation: implementation)
    for _ in 0..<5 {
        for parameter in parameters {
            parameter.grad = try Tensor((0..<parameter.count).map { _ in next() }, dtype: parameter.dtype)
        }
        try optimizer.step()
    }
    return parameters.map { $0.bitHash() }
        + parameters.map { optimizer.state(for: $0)!["momentum_buffer"]!.bitHash() }
}

let reference = try run(Execution(threads: 1, backend: .serial), .forLoop)
for threads in 1...3 {
    for backend in [Backend.dispatch, .openMP] {
        for implementation in Implementation.allCases {
            let execution = try Execution(threads: threads, backend: backend, serialThreshold: 0, chunkElements: 64)
            guard try run(execution, implementation) == reference else {
                print("SignedMomentum: \(implementation) on \(threads) threads (\(backend)) differs from the for-loop path")
                exit(1)
            }
            print("SignedMomentum: \(implementation), \(threads) threads, \(backend): same bits as the for-loop path")
        }
    }
}
print("one Adam step and a rule of this package, through a dependency taken by version")
