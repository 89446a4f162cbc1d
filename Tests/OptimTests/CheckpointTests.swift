import Foundation
import Optim
import Testing

/// Checkpoint files: a run saved to a file and loaded into a new optimizer continues bit for
/// bit; damaged, truncated and foreign files are refused with a message and change nothing.
@Suite struct CheckpointTests {
    static func temporaryPath(_ name: String) -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("optim-checkpoints-\(getpid())")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent(name).path
    }

    /// The parameters of a small model in three dtypes, one of them a matrix (Muon's).
    static func parameters(_ seed: UInt64) throws -> [Tensor] {
        var random = TestRandom(seed: seed)
        return try [Tensor(random.values(12), shape: [3, 4]), Tensor(random.values(20), shape: [4, 5], dtype: .float64),
                    Tensor(random.values(6), shape: [2, 3], dtype: .bfloat16)]
    }

    /// One step of `optimizer` over `parameters`, with gradients from `random`; LBFGS through
    /// its closure, SparseAdam with every row in a sparse gradient.
    static func step(_ entry: OptimizerEntry, _ optimizer: any Optimizer, _ parameters: [Tensor],
                     _ random: inout TestRandom) throws {
        let gradients = try parameters.map { try Tensor(random.values($0.count), shape: $0.shape, dtype: $0.dtype) }
        func setGradients() throws {
            for (parameter, gradient) in zip(parameters, gradients) {
                if entry.sparseGradients == .required {
                    parameter.sparseGrad = try RowSparseGradient(indices: Array(0..<parameter.shape[0]), values: gradient)
                } else {
                    parameter.grad = gradient
                }
            }
        }
        if entry.engine == .closure {
            _ = try optimizer.step {
                try setGradients()
                return parameters.map { $0.toArray().map { $0 * $0 }.reduce(0, +) }.reduce(0, +)
            }
        } else {
            try setGradients()
            try optimizer.step()
        }
    }

    /// Five steps, a save, a load into a new optimizer over copies of the parameters, five more
    /// steps: the same bits as ten steps without a pause, for every optimizer of the catalog.
    @Test(arguments: OptimizerCatalog.entries)
    func aRunSavedAndLoadedContinuesBitForBit(entry: OptimizerEntry) throws {
        func parameters() throws -> [Tensor] {
            let all = try Self.parameters(3)
            return entry.singleDType ? try all.map { try Tensor($0.toArray(), shape: $0.shape, dtype: .float64) } : all
        }
        let straight = try parameters()
        let uninterrupted = try entry.make(straight)
        var random = TestRandom(seed: 9)
        for _ in 0..<10 { try Self.step(entry, uninterrupted, straight, &random) }

        let first = try parameters()
        let before = try entry.make(first)
        random = TestRandom(seed: 9)
        for _ in 0..<5 { try Self.step(entry, before, first, &random) }
        let path = Self.temporaryPath("\(entry.name).safetensors")
        let model = Dictionary(uniqueKeysWithValues: first.enumerated().map { ("layer\($0.offset).weight", $0.element) })
        try Checkpoint.save(before, to: path, tensors: model)

        let resumed = try parameters()
        let after = try entry.make(resumed)
        let tensors = try Checkpoint.load(into: after, from: path)
        #expect(Set(tensors.keys) == Set(model.keys))
        for (name, tensor) in tensors {
            let saved = try #require(model[name])
            #expect(tensor.dtype == saved.dtype && tensor.shape == saved.shape && tensor.bitHash() == saved.bitHash())
        }
        for (index, parameter) in resumed.enumerated() { try parameter.copy(from: #require(tensors["layer\(index).weight"])) }
        for _ in 0..<5 { try Self.step(entry, after, resumed, &random) }
        #expect(resumed.map { $0.bitHash() } == straight.map { $0.bitHash() })
        #expect(after.stateDict() == uninterrupted.stateDict())
    }

    /// A small checkpoint of Adam after two steps, and its bytes.
    static func adamCheckpoint() throws -> (path: String, bytes: [UInt8], optimizer: Adam, parameters: [Tensor]) {
        let parameters = try Self.parameters(4)
        let adam = try Adam(parameters, options: .init(lr: 0.01, amsgrad: true))
        var random = TestRandom(seed: 2)
        let entry = try #require(OptimizerCatalog.entry(named: "Adam"))
        for _ in 0..<2 { try Self.step(entry, adam, parameters, &random) }
        let path = Self.temporaryPath("adam-\(UInt64.random(in: 0...UInt64.max)).safetensors")
        try Checkpoint.save(adam, to: path)
        return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))), adam, parameters)
    }

    /// Loads `bytes` written to a file into a fresh Adam over the same shapes; returns the
    /// error, and checks that the optimizer did not change.
    static func refusal(of bytes: [UInt8], name: String) throws -> OptimError? {
        let path = temporaryPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let parameters = try Self.parameters(4)
        let adam = try Adam(parameters, options: .init(lr: 0.01, amsgrad: true))
        let before = adam.stateDict()
        let values = parameters.map { $0.bitHash() }
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            try Checkpoint.load(into: adam, from: path)
            return nil
        } catch let error as OptimError {
            #expect(adam.stateDict() == before)
            #expect(parameters.map { $0.bitHash() } == values)
            return error
        }
    }

    /// A file of several read stages (the reader hashes one stage while it reads the next, in
    /// stages of 16 MiB) reads back bit for bit, tensors of sizes that end mid-block included;
    /// a bit flipped in its last stage, or at the first byte of its second, is refused.
    @Test func aFileOfSeveralReadStagesReadsBackAndItsLastStageIsChecked() throws {
        var random = TestRandom(seed: 12)
        let model = try ["wide": Tensor(random.values(5_000_001), shape: [5_000_001]),
                         "deep": Tensor(random.values(3_333_333), shape: [3_333_333], dtype: .float64),
                         "small": Tensor(random.values(7), shape: [7], dtype: .bfloat16)]
        let parameters = try Self.parameters(5)
        let adam = try Adam(parameters)
        let entry = try #require(OptimizerCatalog.entry(named: "Adam"))
        try Self.step(entry, adam, parameters, &random)
        let path = Self.temporaryPath("stages-\(UInt64.random(in: 0...UInt64.max)).safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint.save(adam, to: path, tensors: model)

        let contents = try Checkpoint.read(from: path)
        #expect(contents.stateDict == adam.stateDict())
        #expect(contents.tensors.mapValues { $0.bitHash() } == model.mapValues { $0.bitHash() })

        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let dataStart = 8 + (Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16)
        #expect(bytes.count - dataStart > 2 * 16 << 20, "the data spans three stages at least")
        for offset in [bytes.count - 1, dataStart + 16 << 20] {
            var damaged = bytes
            damaged[offset] ^= 0x10
            let error = try Self.refusal(of: damaged, name: "stages-damaged.safetensors")
            #expect(error?.message.contains("do not match their hash") == true, "byte \(offset): \(String(describing: error))")
        }
    }

    /// Every prefix of a checkpoint is refused, with a message that names the file.
    @Test func aTruncatedFileIsRefused() throws {
        let (_, bytes, _, _) = try Self.adamCheckpoint()
        for length in Array(0..<min(bytes.count, 300)) + stride(from: 300, to: bytes.count, by: 7).map({ $0 }) {
            let error = try Self.refusal(of: Array(bytes.prefix(length)), name: "truncated.safetensors")
            #expect(error?.message.contains("truncated.safetensors") == true, "\(length) bytes: \(String(describing: error))")
        }
    }

    /// A file with any one bit flipped is refused: the header's structure, the hashes of the
    /// state dict's text and of the tensor bytes between them see every flip.
    @Test func aFileWithAnyBitFlippedIsRefused() throws {
        let (_, bytes, _, _) = try Self.adamCheckpoint()
        var accepted: [Int] = []
        // Every bit of the length and of the first bytes, and one bit of every byte after them.
        let bits = Array(0..<512) + stride(from: 512, to: bytes.count * 8, by: 9)
        for bit in bits {
            var damaged = bytes
            damaged[bit / 8] ^= 1 << UInt8(bit % 8)
            // A flipped bit of the padding spaces after the header may leave valid JSON whitespace.
            if try Self.refusal(of: damaged, name: "flipped.safetensors") == nil { accepted.append(bit) }
        }
        let headerEnd = 8 + (Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16)
        for bit in accepted {
            let byte = bit / 8
            #expect(byte < headerEnd && bytes[byte] == UInt8(ascii: " "), "flipping bit \(bit) was not noticed")
        }
    }

    /// Files that are not checkpoints of this library: another safetensors file (a model's
    /// weights), a file of another version, text, nothing.
    @Test func foreignFilesAreRefused() throws {
        let (path, bytes, _, _) = try Self.adamCheckpoint()
        let contents = try Checkpoint.read(from: path)
        #expect(contents.optimizer == "Adam")

        func safetensors(header: String, data: [UInt8] = []) -> [UInt8] {
            var length = UInt64(header.utf8.count).littleEndian
            return withUnsafeBytes(of: &length, Array.init) + Array(header.utf8) + data
        }
        let weights = safetensors(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8))
        let otherFormat = safetensors(header: #"{"__metadata__":{"format":"pt"}}"#)
        let otherVersion = Array(String(decoding: bytes, as: UTF8.self)
            .replacingOccurrences(of: #""version":"1""#, with: #""version":"9""#).utf8)
        let hugeHeader = [UInt8](repeating: 0xFF, count: 8) + Array("{}".utf8)
        let unknownDType = safetensors(header: #"{"w":{"dtype":"I8","shape":[2],"data_offsets":[0,2]},"__metadata__":{}}"#,
                                       data: [1, 2])
        let deep = safetensors(header: String(repeating: "[", count: 10_000))
        for (name, file) in [("weights", weights), ("other-format", otherFormat), ("other-version", otherVersion),
                             ("huge-header", hugeHeader), ("unknown-dtype", unknownDType), ("deep", deep),
                             ("text", Array("optimizer state\n".utf8)), ("empty", [])] {
            let error = try Self.refusal(of: file, name: "\(name).safetensors")
            #expect(error != nil, "\(name) was loaded")
        }
    }

    /// A checkpoint of one optimizer does not load into another type.
    @Test func aCheckpointOfAnotherOptimizerIsRefused() throws {
        let (path, _, _, _) = try Self.adamCheckpoint()
        let parameters = try Self.parameters(4)
        let adamW = try AdamW(parameters)
        let before = adamW.stateDict()
        let error = #expect(throws: OptimError.self) { try Checkpoint.load(into: adamW, from: path) }
        #expect(error?.message.contains("holds the state of Adam, not of AdamW") == true, "\(String(describing: error))")
        #expect(adamW.stateDict() == before)
    }

    /// A save that fails (a folder that does not exist) leaves no file behind and throws.
    @Test func aSaveThatCannotWriteThrows() throws {
        let (_, _, adam, _) = try Self.adamCheckpoint()
        #expect(throws: OptimError.self) { try Checkpoint.save(adam, to: "/nonexistent-folder/adam.safetensors") }
    }

    /// The `CheckpointWriter` executable, built beside this test binary.
    static var writerPath: String {
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return binary.deletingLastPathComponent().appendingPathComponent("CheckpointWriter").path
    }

    /// The inode of the file at `path` (a save renames a new file there), or nil.
    static func fileIdentity(_ path: String) -> UInt64? {
        var status = stat()
        return stat(path, &status) == 0 ? UInt64(status.st_ino) : nil
    }

    /// A process that saves checkpoints over and over is killed (SIGKILL) at random moments, 40
    /// times, each after it finished a save of its own; after each kill the file at the path is a whole checkpoint of one save, never a
    /// mixture, and the saves it holds only move forward. Kills that land while a save is
    /// writing its temporary file are counted: the test asserts that it reached them.
    @Test func aSaveKilledAtAnyMomentLeavesTheLastWholeCheckpoint() throws {
        let folder = URL(fileURLWithPath: Self.temporaryPath("killed-\(UInt64.random(in: 0...UInt64.max))"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("run.safetensors").path
        var random = TestRandom(seed: 41)
        var lastVersion = 0, killedMidSave = 0, rounds = 0
        for round in 0..<40 {
            // posix_spawn and waitpid rather than Process: nothing between the kill and the read
            // but the writer's own exit.
            let arguments = [Self.writerPath, path, String(round * 1_000_000 + 1), String(1 << 20)]
            var pid: pid_t = 0
            var argv = arguments.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            let previous = Self.fileIdentity(path)
            try #require(posix_spawn(&pid, Self.writerPath, nil, nil, &argv, environ) == 0, "cannot start \(Self.writerPath)")
            // Once this writer has finished a save (the path names a new file), a kill at a
            // random moment in the next 150 ms: about 8 MB a save, so it often lands inside one,
            // however slowly the writer starts (a sanitizer's runtime, a busy machine).
            var waited = 0
            while Self.fileIdentity(path) == previous && waited < 120_000 {
                usleep(2_000)
                waited += 2
            }
            #expect(waited < 120_000, "round \(round): the writer finished no save in 120 s")
            usleep(useconds_t(random.below(150_000)))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            #expect(status & 0x7f == SIGKILL, "the writer stopped before it was killed (status \(status))")

            let partials = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".partial") }
            if !partials.isEmpty { killedMidSave += 1 }
            for partial in partials { try FileManager.default.removeItem(at: folder.appendingPathComponent(partial)) }
            guard FileManager.default.fileExists(atPath: path) else {
                #expect(lastVersion == 0, "the checkpoint disappeared after round \(round)")
                continue
            }
            let contents = try Checkpoint.read(from: path)
            let versions = Set(["first", "second", "parameter"].flatMap { contents.tensors[$0]?.toArray() ?? [-1] })
            #expect(versions.count == 1, "round \(round): one file holds several saves: \(versions.sorted().prefix(4))")
            let version = Int(versions.min() ?? -1)
            #expect(version >= lastVersion, "round \(round): the checkpoint went back from \(lastVersion) to \(version)")
            lastVersion = version
            rounds += 1
        }
        #expect(rounds == 40, "only \(rounds) of 40 kills left a checkpoint to read")
        #expect(killedMidSave >= 5, "only \(killedMidSave) of 40 kills landed during a save's write")
    }
}
