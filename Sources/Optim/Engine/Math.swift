#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library's functions on `Double`, which torch's Python side calls through `math`
/// (bias corrections, schedules): the one file of the optimizers and schedulers that imports it.
enum Math {
    static func pow(_ x: Double, _ y: Double) -> Double { libraryPow(x, y) }
    static func cos(_ x: Double) -> Double { libraryCos(x) }
    static func sqrt(_ x: Double) -> Double { x.squareRoot() }
}

private func libraryPow(_ x: Double, _ y: Double) -> Double { pow(x, y) }
private func libraryCos(_ x: Double) -> Double { cos(x) }
