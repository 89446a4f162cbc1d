import ArgumentParser
import Foundation
import Optim
import OptimGolden

struct VerifyGolden: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-golden",
        abstract: "Replays reference trajectories (optim-golden/1 files) and compares every value.",
        discussion: """
            Prints one line per case: PASS <id> max_err=<e>, FAIL <id> <where> or SKIP <id> <reason>, \
            each case replayed by every optimizer of the catalog that reimplements its optimizer \
            (the Swift-rule Adam replays Adam's cases, its id marked [SwiftAdam]), \
            then a summary line. Files with an "errors" list are checked too: options torch refuses \
            must be refused; files with a "schedulers" list replay learning-rate schedules. Exit status 1 if any case fails.
            """
    )

    @Argument(help: "Golden files to replay.")
    var files: [String]

    @Option(help: "Replay only the cases whose id matches this regular expression.")
    var only: String?

    @Option(help: "Threads of the element loops.")
    var threads: Int = 1

    @Option(help: "Backend: serial, dispatch or openmp.")
    var backend: Backend = .dispatch

    @Option(help: "Implementation: foreach (multi-tensor) or forloop.")
    var implementation: Implementation = .multiTensor

    @Option(help: "Instruction-set tier: baseline, avx2 or avx512 (default: the best this CPU runs).")
    var isa: InstructionSet?

    func run() throws {
        let execution = try Execution(threads: threads, backend: backend, instructionSet: isa ?? .best)
        let filter = try only.map { try Regex($0) }
        let replayer = GoldenReplayer(execution: execution, implementation: implementation)
        var passed = 0, failed = 0, skipped = 0
        func report(_ id: String, _ outcome: ReplayOutcome) {
            switch outcome {
            case .pass(let maxError):
                passed += 1
                print("PASS \(id) max_err=\(String(format: "%.3g", maxError))")
            case .fail(let detail):
                failed += 1
                print("FAIL \(id) \(detail)")
            case .skip(let reason):
                skipped += 1
                print("SKIP \(id) \(reason)")
            }
        }
        func selected(_ id: String) -> Bool {
            guard let filter else { return true }
            return id.contains(filter)
        }
        for path in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let file = try GoldenFile(data: data, source: path, allowingNoCases: true)
            for golden in file.cases where selected(golden.id) {
                // Every catalog optimizer that reimplements the case's optimizer replays it.
                let entries = OptimizerCatalog.entries(replaying: golden.optimizer)
                if entries.isEmpty { report(golden.id, replayer.replay(golden)) }
                for entry in entries {
                    let id = entry.name == golden.optimizer ? golden.id : "\(golden.id) [\(entry.name)]"
                    report(id, replayer.replay(golden, on: entry))
                }
            }
            for check in try GoldenErrorCase.load(data: data) where selected(check.id) {
                report(check.id, check.check(execution: execution))
            }
            for schedule in try GoldenSchedule.load(data: data) where selected(schedule.id) {
                report(schedule.id, schedule.replay())
            }
        }
        print("\(passed) passed, \(failed) failed, \(skipped) skipped")
        if failed > 0 { throw ExitCode(1) }
    }
}
