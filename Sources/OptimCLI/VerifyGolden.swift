import ArgumentParser
import Foundation
import Optim
import OptimGolden

struct VerifyGolden: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-golden",
        abstract: "Replays reference trajectories (optim-golden/1 files) and compares every value.",
        discussion: """
            Prints one line per case: PASS <id> max_err=<e>, FAIL <id> <where>, SKIP <id> <reason>, \
            UNSUPPORTED <id> <reason> (an input its file marks so) or KNOWN <id> <reason> (a listed known \
            difference); PASS and FAIL name the options of a group that the optimizer and its reference \
            do not have (ignored by both), \
            each case replayed by every optimizer of the catalog that reimplements its optimizer \
            (the Swift-rule Adam replays Adam's cases, its id marked [SwiftAdam]), \
            then what the engine's launches did and a summary line. Files with an "errors" list are \
            checked too: options torch refuses must be refused; files with a "schedulers" list replay \
            learning-rate schedules. Exit status 1 if any case fails. With --serial-threshold 0 and \
            small chunks (--chunk-elements 16) even small cases run on several threads, in several \
            chunks; --expect-threaded checks that they did. Which thread runs which chunk is up to \
            the scheduler: the engine line counts the launches whose chunks two threads shared.
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

    @Option(help: "Launches with fewer elements run on the calling thread (default: the backend's).")
    var serialThreshold: Int?

    @Option(help: "Elements per chunk that a thread claims at a time.")
    var chunkElements: Int = Execution.defaultChunkElements

    @Flag(help: "Fail unless some launch was handed to more than one thread and some chunk boundary fell inside a tensor.")
    var expectThreaded = false

    @Option(help: "A file of cases known not to match yet, with reasons: their failures are reported as KNOWN, and a listed case that passes fails.")
    var knownDifferences: String?

    func run() throws {
        let tally = LaunchTally()
        let execution = try Execution(threads: threads, backend: backend, instructionSet: isa ?? .best,
                                      serialThreshold: serialThreshold, chunkElements: chunkElements,
                                      launchTally: tally)
        print("# replaying with \(execution), serial threshold \(execution.serialThreshold), "
              + "chunks of \(execution.chunkElements), \(implementation); this CPU runs "
              + InstructionSet.supported.map(\.rawValue).joined(separator: ", "))
        let filter = try only.map { try Regex($0) }
        let replayer = GoldenReplayer(execution: execution, implementation: implementation)
        let known = try knownDifferences.map { try KnownDifferences(contentsOf: URL(fileURLWithPath: $0)) } ?? .none
        var counts: [String: Int] = [:]
        func report(_ id: String, _ outcome: ReplayOutcome, caseID: String? = nil, ignored: [String] = []) {
            let judged = known.judge(caseID ?? id, outcome)
            counts[judged.label, default: 0] += 1
            let note: String
            switch judged {
            case .pass, .fail:
                note = ignored.isEmpty ? "" : " (ignored, as the reference ignores them: \(ignored.joined(separator: ", ")))"
            default: note = ""
            }
            print("\(judged.label) \(id) \(judged.detail)\(note)")
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
                    report(id, replayer.replay(golden, on: entry), caseID: golden.id,
                           ignored: replayer.ignoredOptions(golden, on: entry))
                }
            }
            for check in file.errorChecks where selected(check.id) {
                report(check.id, check.check(execution: execution))
            }
            for schedule in file.schedules where selected(schedule.id) {
                report(schedule.id, schedule.replay())
            }
        }
        let launches = tally.counts
        print("# engine: \(launches)")
        if expectThreaded && (launches.threadedLaunches == 0 || launches.boundariesInsideTensors == 0) {
            counts["FAIL", default: 0] += 1
            print("FAIL engine: --expect-threaded, but no launch went to more than one thread or no chunk boundary "
                  + "fell inside a tensor (\(execution), serial threshold \(execution.serialThreshold), "
                  + "chunks of \(execution.chunkElements))")
        }
        let summary = [("PASS", "passed"), ("FAIL", "failed"), ("SKIP", "skipped"), ("UNSUPPORTED", "unsupported"),
                       ("KNOWN", "known differences")]
        print(summary.map { "\(counts[$0.0, default: 0]) \($0.1)" }.joined(separator: ", "))
        if counts["FAIL", default: 0] > 0 { throw ExitCode(1) }
    }
}
