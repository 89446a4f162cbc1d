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

    /// Every option's default is its reference's: torch's constructor defaults, or those of the
    /// package the optimizer follows, read from their signatures (Fixtures/defaults.json). An
    /// option of the reference that an entry lacks must be one that only selects torch's
    /// implementation (these all give the same numbers here).
    @Test(arguments: OptimizerCatalog.entries)
    func defaultsAreTheReferences(_ entry: OptimizerEntry) throws {
        struct Defaults: Decodable { let optimizers: [String: [String: StateValue]] }
        let data = try Data(contentsOf: fixtures.appendingPathComponent("defaults.json"))
        let all = try JSONDecoder().decode(Defaults.self, from: data).optimizers
        let reference = try #require(all[entry.replays], "defaults.json has no \(entry.replays)")
        for (name, value) in reference where !TorchOptions.implementationSelectors.contains(name) {
            #expect(entry.defaults[name].map(comparable) == comparable(value),
                    "\(entry).\(name): \(entry.defaults[name].map(String.init(describing:)) ?? "missing"), reference \(value)")
        }
        for name in entry.defaults.keys where reference[name] == nil {
            Issue.record("\(entry) has option \(name), which the reference does not have")
        }
    }

    /// Numbers as `Double` whether written as integers or not, lists element by element.
    private func comparable(_ value: StateValue) -> StateValue {
        switch value {
        case .integer(let number): .number(Double(number))
        case .list(let items): .list(items.map(comparable))
        default: value
        }
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
