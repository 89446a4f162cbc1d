#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// Checkpoint files: an optimizer's state dict, and named model tensors beside it, in the
/// safetensors format that Python's `safetensors` package reads.
///
/// Each tensor of the state dict is a safetensors entry in its own dtype (`state.<id>.<key>`,
/// `state.<id>.<key>.<n>` for LBFGS's lists, `model.<name>` for the model's tensors); the rest of
/// the state dict (options, scalar state, structure) is JSON in the header's `__metadata__`,
/// with each tensor replaced by `{"safetensors": "<entry name>"}`, beside the optimizer's type,
/// the format's version and 64-bit hashes of that JSON and of the tensor bytes, so that a
/// damaged file is refused rather than loaded.
///
/// A save writes a temporary file in the same folder, flushes it to the disk, renames it over
/// the old file and flushes the folder: a process stopped at any moment leaves the previous
/// checkpoint or the new one, never a mixture. A load checks every length, offset, dtype, shape
/// and field before it uses it, and changes the optimizer only when all of them are right.
public enum Checkpoint {
    /// The version of the layout this library writes and reads.
    public static let formatVersion = 1
    static let formatName = "swift-optim-checkpoint"
    /// Headers longer than this are refused before they are read (a state dict's structure
    /// takes a few kilobytes; LBFGS's history a little more).
    static let maximumHeaderBytes = 64 << 20

    /// What a checkpoint file holds.
    public struct Contents: Sendable {
        /// The Swift type of the optimizer that saved it (`Adam`, `RuleOptimizer<LionRule>`).
        public var optimizer: String
        /// The optimizer's state dict, its tensors read from the file's entries.
        public var stateDict: OptimizerStateDict
        /// The model's tensors saved beside the optimizer, by name.
        public var tensors: [String: Tensor]

        /// Contents for ``Checkpoint/write(_:to:)``: `optimizer` names the type that is to load it.
        public init(optimizer: String, stateDict: OptimizerStateDict, tensors: [String: Tensor] = [:]) {
            self.optimizer = optimizer
            self.stateDict = stateDict
            self.tensors = tensors
        }
    }

    /// Saves `optimizer`'s state dict and `tensors` (say, the model's parameters by name) to
    /// `path`, replacing what was there only once the new file is complete on disk.
    ///
    /// The state's tensors go to the file straight from the optimizer's memory, with no copy:
    /// the save holds the optimizer's lock meanwhile, so a step from another thread waits for it.
    public static func save(_ optimizer: some Optimizer, to path: String, tensors: [String: Tensor] = [:]) throws {
        let type = typeName(of: optimizer)
        if let lending = optimizer as? any LendsStateDict {
            try lending.withLentStateDict { try write(Contents(optimizer: type, stateDict: $0, tensors: tensors), to: path) }
        } else {
            try write(Contents(optimizer: type, stateDict: optimizer.stateDict(), tensors: tensors), to: path)
        }
    }

    /// Loads the checkpoint at `path` into `optimizer`, which must be of the type that saved it;
    /// returns the tensors saved beside it. Throws, changing nothing, when the file is damaged,
    /// of another format or version, or of another optimizer.
    @discardableResult
    public static func load(into optimizer: some Optimizer, from path: String) throws -> [String: Tensor] {
        let contents = try read(from: path)
        let type = typeName(of: optimizer)
        guard contents.optimizer == type else {
            throw OptimError(.invalidArgument, "\(path) holds the state of \(contents.optimizer), not of \(type)")
        }
        try optimizer.loadStateDict(contents.stateDict)
        return contents.tensors
    }

    static func typeName(of optimizer: some Optimizer) -> String { String(describing: type(of: optimizer)) }

    // MARK: Writing

    /// Writes `contents` to `path` as ``save(_:to:tensors:)`` does (for a state dict converted
    /// from elsewhere, say).
    public static func write(_ contents: Contents, to path: String) throws {
        guard !contents.tensors.keys.contains(where: { $0.isEmpty }) else {
            throw OptimError(.invalidArgument, "a tensor saved in a checkpoint needs a name")
        }
        // Every tensor in its own dtype, in the order of the entries.
        var entries: [(name: String, dtype: DType, shape: [Int], tensor: Tensor)] = []
        func entry(_ name: String, _ value: TensorValue) throws -> StateValue {
            guard try Tensor.elementCount(value.shape) == value.count else {
                throw OptimError(.invalidArgument, "state \(name) holds \(value.count) elements, not the \(value.shape) of its shape")
            }
            entries.append((name, value.dtype, value.shape, value.storage))
            return .dictionary(["safetensors": .string(name)])
        }
        var state: [String: StateValue] = [:]
        for (id, parameterState) in contents.stateDict.state.sorted(by: { $0.key < $1.key }) {
            var values: [String: StateValue] = [:]
            for (key, value) in parameterState.sorted(by: { $0.key < $1.key }) {
                switch value {
                case .tensor(let tensor): values[key] = try entry("state.\(id).\(key)", tensor)
                case .list(let items) where items.contains(where: { if case .tensor = $0 { true } else { false } }):
                    values[key] = .list(try items.enumerated().map { number, item in
                        guard case .tensor(let tensor) = item else { return item }
                        return try entry("state.\(id).\(key).\(number)", tensor)
                    })
                default: values[key] = value
                }
            }
            state[String(id)] = .dictionary(values)
        }
        for (name, tensor) in contents.tensors.sorted(by: { $0.key < $1.key }) {
            entries.append(("model.\(name)", tensor.dtype, tensor.shape, tensor))
        }
        let stateDict = JSONText.encode(.dictionary(["state": .dictionary(state),
                                                     "param_groups": .list(contents.stateDict.paramGroups.map(StateValue.dictionary))]))
        var header: [String: StateValue] = [:]
        var offset = 0
        for entry in entries {
            let bytes = entry.tensor.byteCount
            header[entry.name] = .dictionary(["dtype": .string(safetensorsName(entry.dtype)),
                                              "shape": .list(entry.shape.map(StateValue.integer)),
                                              "data_offsets": .list([.integer(offset), .integer(offset + bytes)])])
            offset += bytes
        }
        // The data hash is known only once the data is written (it is computed while the data
        // is written); its 16 digits take the same room whatever it is.
        func headerBytes(dataHash: UInt64) -> [UInt8] {
            header["__metadata__"] = .dictionary([
                "format": .string(formatName), "version": .string(String(formatVersion)),
                "optimizer": .string(contents.optimizer), "state_dict": .string(stateDict),
                "state_dict_hash": .string(hex(hash(Array(stateDict.utf8)))), "data_hash": .string(hex(dataHash)),
            ])
            var bytes = Array(JSONText.encode(.dictionary(header)).utf8)
            // The data starts 8-byte aligned, as the format recommends.
            while (8 + bytes.count) % 8 != 0 { bytes.append(UInt8(ascii: " ")) }
            var length = UInt64(bytes.count).littleEndian
            return withUnsafeBytes(of: &length) { Array($0) } + bytes
        }
        let dataStart = headerBytes(dataHash: 0).count

        try replaceAtomically(path) { file in
            try file.seek(to: dataStart)
            // The hash (one serial chain of multiplies, about 0.2 s a GB) runs on a second
            // thread while this one writes the same bytes: neither writes to them.
            let tensors = entries.map(\.tensor)
            let results = HashAndWrite()
            DispatchQueue.concurrentPerform(iterations: 2) { part in
                if part == 0 {
                    var dataHash: UInt64 = 0
                    for tensor in tensors {
                        forEachHashBlock(of: tensor) { block in dataHash = hash(block, seed: dataHash) }
                    }
                    results.dataHash = dataHash
                } else {
                    do {
                        for tensor in tensors { try forEachHashBlock(of: tensor) { try file.write($0) } }
                    } catch {
                        results.writeError = error
                    }
                }
            }
            if let error = results.writeError { throw error }
            let header = headerBytes(dataHash: results.dataHash)
            precondition(header.count == dataStart, "a checkpoint header changed its length with its data hash")
            try file.seek(to: 0)
            try header.withUnsafeBytes { try file.write($0) }
        }
    }

    /// What the two threads of a save leave: each sets its own field, read once both are done.
    private final class HashAndWrite: @unchecked Sendable {
        var dataHash: UInt64 = 0
        var writeError: (any Error)?
    }

    /// A hash block of a tensor being read, and where its bytes are in the file. Each stage of
    /// a read hands its blocks from the reading thread to the hashing one, never to both at once.
    struct FileBlock: @unchecked Sendable {
        let memory: UnsafeRawBufferPointer
        let position: Int
    }

    /// What the two threads of a read leave: each sets its own field, read once both are done.
    private final class ReadAndHash: @unchecked Sendable {
        var dataHash: UInt64 = 0
        var readError: (any Error)?
    }

    /// Reads `blocks` from `file` and returns their data hash. The reads go in stages of
    /// `stageBlocks` blocks; a second thread hashes each stage while this one reads the next,
    /// so that the hash, one serial chain, costs nothing beside the reads.
    private static func readAndHash(_ blocks: [FileBlock], from file: InputFile, stageBlocks: Int = 16) throws -> UInt64 {
        let stages = stride(from: 0, to: blocks.count, by: stageBlocks).map { $0..<min($0 + stageBlocks, blocks.count) }
        let results = ReadAndHash()
        for stage in 0...stages.count {
            DispatchQueue.concurrentPerform(iterations: 2) { part in
                if part == 0, stage < stages.count {
                    do {
                        for block in blocks[stages[stage]] {
                            guard let base = block.memory.baseAddress else { continue }
                            try file.read(into: UnsafeMutableRawPointer(mutating: base), count: block.memory.count,
                                          at: block.position)
                        }
                    } catch {
                        results.readError = error
                    }
                } else if part == 1, stage > 0 {
                    for block in blocks[stages[stage - 1]] { results.dataHash = hash(block.memory, seed: results.dataHash) }
                }
            }
            if let error = results.readError { throw error }
        }
        return results.dataHash
    }

    /// The data hash's unit: each tensor's bytes are hashed in blocks of this many (the last one
    /// shorter), each block from the previous block's hash, tensors in the order of their offsets.
    static let hashBlockBytes = 1 << 20

    /// Calls `body` with the blocks of `tensor`'s bytes that the data hash takes one by one.
    static func forEachHashBlock(of tensor: Tensor, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        for start in stride(from: 0, to: tensor.byteCount, by: hashBlockBytes) {
            try body(UnsafeRawBufferPointer(start: tensor.baseAddress + start,
                                            count: min(hashBlockBytes, tensor.byteCount - start)))
        }
    }

    static func hash(_ block: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        guard let base = block.baseAddress else { return seed }
        return Kernels.hash(base, byteCount: block.count, seed: seed)
    }

    static func safetensorsName(_ dtype: DType) -> String {
        switch dtype {
        case .float32: "F32"
        case .float64: "F64"
        case .float16: "F16"
        case .bfloat16: "BF16"
        }
    }

    static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return 0 }
            return Kernels.hash(base, byteCount: raw.count, seed: 0)
        }
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// An open file being written.
    struct OutputFile {
        let descriptor: Int32
        let path: String

        func seek(to offset: Int) throws {
            guard lseek(descriptor, off_t(offset), SEEK_SET) == off_t(offset) else {
                throw OptimError(.invalidArgument, "cannot seek in \(path): \(String(cString: strerror(errno)))")
            }
        }

        func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                guard let base = bytes.baseAddress else { return }
                let written = systemWrite(descriptor, base + done, bytes.count - done)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw OptimError(.invalidArgument, "cannot write \(path): \(String(cString: strerror(errno)))")
                }
                done += written
            }
        }
    }

    /// Writes a new file through `body` beside `path`, flushes it to the disk, renames it over
    /// `path` and flushes the folder, so that `path` is always the old file or the new one.
    static func replaceAtomically(_ path: String, _ body: (OutputFile) throws -> Void) throws {
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        // Unique per save, so that two saves to one path (from two threads, say) never share it.
        let temporary = "\(path).\(getpid())-\(UInt64.random(in: 0...UInt64.max)).partial"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw OptimError(.invalidArgument, "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            try body(OutputFile(descriptor: descriptor, path: temporary))
            guard fsync(descriptor) == 0 else {
                throw OptimError(.invalidArgument, "cannot flush \(temporary): \(String(cString: strerror(errno)))")
            }
        } catch {
            close(descriptor)
            throw error
        }
        guard close(descriptor) == 0 else {
            throw OptimError(.invalidArgument, "cannot close \(temporary): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            throw OptimError(.invalidArgument, "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
        renamed = true
        let folderDescriptor = open(folder, O_RDONLY | O_CLOEXEC)
        if folderDescriptor >= 0 {
            _ = fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    // MARK: Reading

    /// Reads the checkpoint at `path`. Throws an error that says what is wrong and where when
    /// the file is not a checkpoint of this format and version, or is damaged.
    public static func read(from path: String) throws -> Contents {
        try parse(InputFile(path), name: path)
    }

    /// An open file being read, by offset.
    final class InputFile: Sendable {
        let descriptor: Int32
        let path: String
        let size: Int

        init(_ path: String) throws {
            self.path = path
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw OptimError(.invalidArgument, "cannot open \(path): \(String(cString: strerror(errno)))")
            }
            var status = stat()
            guard fstat(descriptor, &status) == 0, status.st_size >= 0, let size = Int(exactly: status.st_size) else {
                close(descriptor)
                throw OptimError(.invalidArgument, "cannot read the size of \(path)")
            }
            self.size = size
        }

        deinit { close(descriptor) }

        /// Reads `count` bytes from `offset` (inside the file) into `destination`.
        func read(into destination: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
            var done = 0
            while done < count {
                let read = pread(descriptor, destination + done, count - done, off_t(offset + done))
                if read < 0 && errno == EINTR { continue }
                guard read > 0 else {
                    throw OptimError(.invalidArgument, "cannot read \(path): it ended after \(offset + done) of \(size) bytes")
                }
                done += read
            }
        }

        func bytes(at offset: Int, count: Int) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            try bytes.withUnsafeMutableBytes { buffer in
                if let base = buffer.baseAddress { try read(into: base, count: count, at: offset) }
            }
            return bytes
        }
    }

    /// The checkpoint in `file` (`name` says which, for messages). Reads the header, checks it
    /// whole, then reads each tensor straight into its storage: the tensors take the file's
    /// size in memory, once.
    static func parse(_ file: InputFile, name: String) throws -> Contents {
        func failure(_ message: String) -> OptimError {
            OptimError(.invalidArgument, "\(name) is not a readable checkpoint: \(message)")
        }
        guard file.size >= 8 else { throw failure("it has \(file.size) bytes, fewer than the 8 of a header length") }
        let declared = try file.bytes(at: 0, count: 8).enumerated()
            .reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard declared <= UInt64(maximumHeaderBytes), Int(declared) <= file.size - 8 else {
            throw failure("its header length, \(declared) bytes, does not fit in its \(file.size) bytes")
        }
        let headerEnd = 8 + Int(declared)
        guard case .dictionary(var header) = try JSONText.decode(file.bytes(at: 8, count: Int(declared)),
                                                                 what: "\(name)'s header")
        else { throw failure("its header is not a JSON object") }
        guard case .dictionary(let metadata)? = header.removeValue(forKey: "__metadata__") else {
            throw failure("its header has no __metadata__")
        }
        func text(_ key: String) throws -> String {
            guard case .string(let value)? = metadata[key] else { throw failure("its metadata has no \(key)") }
            return value
        }
        guard try text("format") == formatName else {
            throw failure("its format is \(try text("format")), not \(formatName) (a safetensors file of something else?)")
        }
        guard try text("version") == String(formatVersion) else {
            throw failure("it is of version \(try text("version")); this library reads version \(formatVersion)")
        }
        let stateDictText = try text("state_dict")
        guard try text("state_dict_hash") == hex(hash(Array(stateDictText.utf8))) else {
            throw failure("its state dict does not match its hash: the file is damaged")
        }

        // The entries: known dtypes, shapes whose byte counts fit, offsets inside the data that
        // cover it exactly once, in order; all checked before any memory is allocated for them.
        let dataCount = file.size - headerEnd
        var entries: [(begin: Int, end: Int, name: String, dtype: DType, shape: [Int])] = []
        for (entryName, value) in header {
            guard case .dictionary(let fields) = value, case .string(let dtypeName)? = fields["dtype"],
                  case .list(let shapeItems)? = fields["shape"], case .list(let offsetItems)? = fields["data_offsets"],
                  offsetItems.count == 2 else {
                throw failure("entry \(entryName) lacks a dtype, a shape or two data offsets")
            }
            guard let dtype = DType.allCases.first(where: { safetensorsName($0) == dtypeName }) else {
                throw failure("entry \(entryName) has dtype \(dtypeName), which this library does not keep")
            }
            let shape = try shapeItems.map { item -> Int in
                guard case .integer(let extent) = item, extent >= 0 else {
                    throw failure("entry \(entryName) has a shape that is not a list of sizes")
                }
                return extent
            }
            guard case .integer(let begin) = offsetItems[0], case .integer(let end) = offsetItems[1],
                  begin >= 0, begin <= end, end <= dataCount else {
                throw failure("entry \(entryName)'s data offsets are not inside its \(dataCount) data bytes")
            }
            guard let byteCount = try? Tensor.byteCount(shape, dtype), byteCount == end - begin else {
                throw failure("entry \(entryName) has \(end - begin) bytes for a \(dtype) tensor of shape \(shape)")
            }
            entries.append((begin, end, entryName, dtype, shape))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        for entry in entries {
            guard entry.begin == covered else {
                throw failure("entry \(entry.name) starts at data byte \(entry.begin), not at \(covered), where the previous ends")
            }
            covered = entry.end
        }
        guard covered == dataCount else {
            throw failure("its entries cover \(covered) of its \(dataCount) data bytes")
        }
        var tensors: [String: Tensor] = [:]
        var blocks: [FileBlock] = []
        for entry in entries {
            // Not zeroed first: the reads fill every byte or throw.
            let storage = try TensorStorage(allocatingBytes: entry.end - entry.begin)
            let tensor = Tensor(shape: entry.shape, dtype: entry.dtype, storage: storage)
            var position = headerEnd + entry.begin
            forEachHashBlock(of: tensor) { block in
                blocks.append(FileBlock(memory: block, position: position))
                position += block.count
            }
            tensors[entry.name] = tensor
        }
        guard try text("data_hash") == hex(try readAndHash(blocks, from: file)) else {
            throw failure("its tensor bytes do not match their hash: the file is damaged")
        }

        // The state dict, with every reference replaced by its tensor.
        var used: Set<String> = []
        func resolve(_ value: StateValue) throws -> StateValue {
            switch value {
            case .dictionary(let entries):
                guard entries.count == 1, case .string(let reference)? = entries["safetensors"] else {
                    return .dictionary(try entries.mapValues(resolve))
                }
                guard reference.hasPrefix("state."), let tensor = tensors[reference] else {
                    throw failure("its state dict refers to a tensor \(reference) that it does not hold")
                }
                used.insert(reference)
                return .tensor(TensorValue(shape: tensor.shape, storage: tensor))
            case .list(let items): return .list(try items.map(resolve))
            default: return value
            }
        }
        guard case .dictionary(let root) = try JSONText.decode(Array(stateDictText.utf8), what: "\(name)'s state dict"),
              case .dictionary(let savedState)? = root["state"], case .list(let savedGroups)? = root["param_groups"] else {
            throw failure("its state dict lacks state or param_groups")
        }
        var stateDict = OptimizerStateDict(state: [:], paramGroups: [])
        for (key, value) in savedState {
            guard let id = Int(key), case .dictionary(let entries) = try resolve(value) else {
                throw failure("its state dict has state \(key), which is not a parameter id with its state")
            }
            stateDict.state[id] = entries
        }
        stateDict.paramGroups = try savedGroups.map { group in
            guard case .dictionary(let entries) = group else { throw failure("a parameter group is not an object") }
            return entries
        }
        var model: [String: Tensor] = [:]
        for (entryName, tensor) in tensors where !used.contains(entryName) {
            guard entryName.hasPrefix("model.") else {
                throw failure("entry \(entryName) is neither a model tensor nor referred to by the state dict")
            }
            model[String(entryName.dropFirst("model.".count))] = tensor
        }
        return Contents(optimizer: try text("optimizer"), stateDict: stateDict, tensors: model)
    }
}

/// An optimizer that shows a body its state dict with the live state tensors, not copies, while
/// it holds its lock (so that a checkpoint is written from the optimizer's memory).
protocol LendsStateDict {
    func withLentStateDict<Result>(_ body: (OptimizerStateDict) throws -> Result) throws -> Result
}

// The C library's read and write, under names that the checkpoint's own methods do not shadow.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
