// Saves checkpoints to one path, version after version, until it is stopped: the process that
// CheckpointTests kills at random moments of a save. An error ends it with its message on
// standard error and status 1.
//
//     CheckpointWriter <path> <first version> <elements per tensor>
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Optim

let arguments = CommandLine.arguments
guard arguments.count == 4, let firstVersion = Int(arguments[2]), let elements = Int(arguments[3]) else {
    print("usage: CheckpointWriter <path> <first version> <elements per tensor>")
    exit(2)
}

func saveForever() throws -> Never {
    let parameter = try Tensor.zeros([4])
    // The execution the environment asks for: RejectedInputTests gives values it refuses.
    let sgd = try SGD([parameter], options: .init(lr: 0.1, momentum: 0.9))
    parameter.grad = try Tensor([1, 2, 3, 4])
    try sgd.step()
    // Two tensors and the parameter, all of one version's value: a file that mixes two saves
    // would show it.
    let first = try Tensor.zeros([elements]), second = try Tensor.zeros([elements])
    var version = firstVersion
    while true {
        let value = Double(version)
        for tensor in [first, second, parameter] {
            tensor.baseAddress.initializeMemory(as: Float.self, repeating: Float(value), count: tensor.count)
        }
        try Checkpoint.save(sgd, to: arguments[1], tensors: ["first": first, "second": second, "parameter": parameter])
        version += 1
    }
}

do {
    try saveForever()
} catch {
    // The error's message and a status of 1, rather than a trap.
    var message = "\(error)\n"
    _ = message.withUTF8 { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(1)
}
