/// Option checks shared by the optimizers, built-in and written in Swift. Messages follow torch's wording where torch has one,
/// and also refuse NaN and infinities, which torch lets through.
public enum OptionCheck {
    /// Throws an invalid-option error with `message` unless `condition` holds: one line per check
    /// for the options no shared check below covers.
    public static func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        guard condition else { throw OptimError(.invalidOption, message()) }
    }

    /// Throws "Invalid learning rate" unless `lr` is finite and ≥ 0.
    public static func learningRate(_ lr: Double) throws {
        guard lr.isFinite, lr >= 0 else {
            throw OptimError(.invalidOption, "Invalid learning rate: \(lr) (must be finite and >= 0)")
        }
    }

    /// Throws "Invalid `name` value" unless `value` is finite and ≥ 0.
    public static func nonNegative(_ value: Double, _ name: String) throws {
        guard value.isFinite, value >= 0 else {
            throw OptimError(.invalidOption, "Invalid \(name) value: \(value) (must be finite and >= 0)")
        }
    }

    /// value ≥ 0 and finite, in the wording of torch's newer optimizers (Adafactor, Muon):
    /// "`name` should be >= 0 but is: `value`".
    public static func shouldBeNonNegative(_ value: Double, _ name: String) throws {
        guard value.isFinite, value >= 0 else {
            throw OptimError(.invalidOption, "\(name) should be >= 0 but is: \(value) (and finite)")
        }
    }

    /// Throws "Invalid `name` value" unless `value` is finite.
    public static func finite(_ value: Double, _ name: String) throws {
        guard value.isFinite else {
            throw OptimError(.invalidOption, "Invalid \(name) value: \(value) (must be finite)")
        }
    }

    /// Throws "Invalid epsilon value" unless `eps` is finite and ≥ 0.
    public static func epsilon(_ eps: Double) throws {
        guard eps.isFinite, eps >= 0 else {
            throw OptimError(.invalidOption, "Invalid epsilon value: \(eps) (must be finite and >= 0)")
        }
    }

    /// 0 <= beta < 1, as torch requires of Adam's betas.
    public static func beta(_ beta: Double, index: Int) throws {
        guard beta >= 0, beta < 1 else {
            throw OptimError(.invalidOption, "Invalid beta parameter at index \(index): \(beta) (must be in [0, 1))")
        }
    }

    /// 0 <= value <= 1.
    public static func unitInterval(_ value: Double, _ name: String) throws {
        guard value >= 0, value <= 1 else {
            throw OptimError(.invalidOption, "Invalid \(name) value: \(value) (must be in [0, 1])")
        }
    }
}
