import ArgumentParser
import Optim

struct Catalog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Prints the library's optimizers (OptimizerCatalog) as the Markdown table of the README."
    )

    func run() { print(OptimizerCatalog.markdownTable()) }
}
