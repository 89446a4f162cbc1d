/// The error every throwing entry point of the library raises. `message` says what was wrong
/// and why; a step that throws has changed no parameter and no state.
public struct OptimError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of error it is, for code that reacts to some kinds.
    public enum Kind: String, Sendable {
        /// An optimizer or scheduler option is out of its domain.
        case invalidOption
        /// A tensor, shape, array or argument does not fit what the call needs.
        case invalidArgument
        /// A gradient does not match its parameter (shape, dtype, layout).
        case gradientMismatch
        /// The machine cannot run what was asked (an instruction set, an OpenMP runtime).
        case unavailable
        /// The system could not provide the memory a tensor needs.
        case outOfMemory
    }

    /// The kind of error.
    public let kind: Kind
    /// What was wrong and why, in torch's words where torch has them.
    public let message: String

    /// An error of `kind` with `message` (rules written in Swift throw these from `validate`).
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
