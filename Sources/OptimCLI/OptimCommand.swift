import ArgumentParser
import Optim
import OptimWorkloads

@main
struct OptimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optim",
        abstract: "Benchmarks and reference checks for the Optim library.",
        subcommands: [Study.self, Bench.self, BenchCheckpoint.self, VerifyGolden.self, Probe.self, PlotSchedules.self, Catalog.self,
                      Train.self, Trajectories.self],
        defaultSubcommand: Study.self
    )
}

/// A comma-separated list option value.
struct CommaList<Element: ExpressibleByArgument>: ExpressibleByArgument {
    let values: [Element]

    init?(argument: String) {
        var values: [Element] = []
        for part in argument.split(separator: ",") {
            guard let value = Element(argument: part.trimmingCharacters()) else { return nil }
            values.append(value)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }

    init(_ values: [Element]) { self.values = values }

    var defaultValueDescription: String { values.map(\.defaultValueDescription).joined(separator: ",") }
}

extension Backend: ExpressibleByArgument {}
extension Implementation: ExpressibleByArgument {}
extension InstructionSet: ExpressibleByArgument {}
extension DType: ExpressibleByArgument {}
extension Workload: ExpressibleByArgument {}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
