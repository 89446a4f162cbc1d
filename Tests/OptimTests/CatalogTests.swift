import Foundation
import Optim
import OptimGolden
import Testing

/// The catalog is the one list of optimizers: its entries are distinct and complete, and the
/// README's list is the catalog's.
@Suite struct CatalogTests {
    @Test func namesAreDistinctAndEveryEntryHasOptionSetsToTryAndToRefuse() {
        let names = OptimizerCatalog.entries.map { $0.name.lowercased() }
        #expect(Set(names).count == names.count)
        for entry in OptimizerCatalog.entries {
            #expect(entry.sampleOptions.count >= 2, "\(entry) has no option set beyond its defaults")
            #expect(!entry.invalidOptions.isEmpty, "\(entry) has no option set to refuse")
            #expect(entry.arrayAccesses >= 3, "\(entry) reads and writes at least p, g and p")
            #expect(OptimizerCatalog.entry(named: entry.name.uppercased())?.name == entry.name)
        }
    }

    /// Every optimizer that PyTorch's reference files name (torch.optim as its 2.15 documentation
    /// lists it) is in the catalog, with torch as its reference.
    @Test func everyOptimizerOfTorchsReferencesIsInTheCatalog() throws {
        let names = try ["optimizers.json", "random_cases.json"].flatMap {
            try GoldenFile(contentsOf: fixtures.appendingPathComponent($0)).cases.map(\.optimizer)
        }
        #expect(Set(names).count >= 15)
        for name in Set(names) { #expect(OptimizerCatalog.entry(named: name)?.reference == .torch, "\(name)") }
    }

    @Test func theReadmeListsTheCatalog() throws {
        let readme = try String(contentsOf: fixtures.deletingLastPathComponent().deletingLastPathComponent()
                                    .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let begin = try #require(readme.range(of: "<!-- catalog:begin -->\n"))
        let end = try #require(readme.range(of: "\n<!-- catalog:end -->"))
        #expect(String(readme[begin.upperBound..<end.lowerBound]) == OptimizerCatalog.markdownTable(),
                 "the README's table differs from `swift run optim catalog`: paste its output between the markers")
    }
}
