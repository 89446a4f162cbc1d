import ArgumentParser
import Foundation
import Optim

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Measures the engine's memory bandwidth with Adam's traffic (4 reads, 3 writes per element)."
    )

    @Option(help: "Elements per array (comma-separated list).")
    var elements = CommaList<Int>([25_557_032, 124_439_808])

    @Option(help: "Thread counts (comma-separated).")
    var threads = CommaList<Int>(Array(Set([1, Execution.coreCount])).sorted())

    @Option(help: "Backends (comma-separated).")
    var backend = CommaList<Backend>([.dispatch, .openMP])

    @Option(help: "Elements per chunk (comma-separated).")
    var chunk = CommaList<Int>([Execution.defaultChunkElements])

    @Option(help: "Instruction-set tier (default: the best this CPU runs).")
    var isa: InstructionSet?

    @Option(help: "Launches below this many elements run on the calling thread (default: the backend's).")
    var serialThreshold: Int?

    @Option(help: "Timed passes.")
    var repetitions = 10

    @Flag(help: "After each row, sleep one second and print the CPU time the process used meanwhile (threads left spinning by the backend).")
    var idleSecond = false

    /// User and system CPU time of the process so far, in milliseconds.
    static func processCPUMilliseconds() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func milliseconds(_ t: timeval) -> Double { Double(t.tv_sec) * 1000 + Double(t.tv_usec) / 1000 }
        return milliseconds(usage.ru_utime) + milliseconds(usage.ru_stime)
    }

    func run() throws {
        print("elements    threads  backend   chunk    us median   us min      ns/element  GB/s")
        for elements in elements.values {
            for threads in threads.values {
                for backend in backend.values {
                    for chunk in chunk.values {
                        let execution = try Execution(threads: threads, backend: backend, instructionSet: isa ?? .best,
                                                      serialThreshold: serialThreshold, chunkElements: chunk)
                        let result = try BandwidthProbe.measure(elements: elements, execution: execution,
                                                                repetitions: repetitions)
                        print(String(format: "%-11d %-8d %-9@ %-8d %-11.1f %-11.1f %-11.3f %.1f", elements, threads,
                                     backend.rawValue as NSString, chunk, result.medianMilliseconds * 1000,
                                     result.minimumMilliseconds * 1000,
                                     result.nanosecondsPerElement, result.gigabytesPerSecond))
                        if idleSecond {
                            let before = Self.processCPUMilliseconds()
                            Thread.sleep(forTimeInterval: 1)
                            print(String(format: "  idle second after the last launch: %.2f ms of CPU time",
                                         Self.processCPUMilliseconds() - before))
                        }
                    }
                }
            }
        }
    }
}
