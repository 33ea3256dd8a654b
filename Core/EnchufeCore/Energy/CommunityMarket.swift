import Foundation

/// One interval of a community's internal market (pure; `community.market` runs it per interval).
///
/// After the physical sharing (each member's β share of the shared generation, RD 244/2019), a
/// member whose share exceeded its use has a `surplus`, one whose use exceeded its share a
/// `deficit`. Surpluses are offered to members with deficits at one internal price; what is not
/// traded goes to the grid (surplus exported, deficit imported). Two rules decide who trades:
///
/// - `proRata`: the traded energy is min(Σ surplus, Σ deficit); every seller sells the same fraction
///   of its surplus and every buyer buys the same fraction of its deficit;
/// - `priority`: only sellers asking at most the price and buyers bidding at least the price take
///   part (no ask or bid: any price); sellers in order of ask (lowest first), buyers in order of
///   bid (highest first), ties in CUPS order, are filled in turn until the traded energy
///   min(Σ eligible surplus, Σ eligible deficit) is used up.
///
/// Invariants (tested): energy bought equals energy sold, money paid equals money received, nobody
/// sells more than its surplus or buys more than its deficit.
public struct CommunityMarket: Sendable {
    public enum Rule: String, Sendable, CaseIterable {
        case proRata = "pro_rata", priority
    }

    public struct Member: Sendable, Equatable {
        public var cups: String
        public var surplus: Double
        public var deficit: Double
        public var order: MarketOrder?

        public init(cups: String, surplus: Double, deficit: Double, order: MarketOrder? = nil) {
            self.cups = cups
            self.surplus = max(0, surplus)
            self.deficit = max(0, deficit)
            self.order = order
        }
    }

    public struct Result: Sendable, Equatable {
        public var cups: String
        public var bought: Double
        public var sold: Double
        /// Money received minus money paid in the market, EUR.
        public var value: Double
        /// What the grid supplied (deficit not bought) and took (surplus not sold).
        public var gridImport: Double
        public var gridExport: Double
    }

    public struct Clearing: Sendable, Equatable {
        public var price: Double
        public var traded: Double
        public var members: [Result]
    }

    public var rule: Rule

    public init(rule: Rule) { self.rule = rule }

    public func clear(_ members: [Member], price: Double) -> Clearing {
        var bought = [Double](repeating: 0, count: members.count)
        var sold = [Double](repeating: 0, count: members.count)
        switch rule {
        case .proRata:
            let supply = members.reduce(0) { $0 + $1.surplus }, demand = members.reduce(0) { $0 + $1.deficit }
            let traded = min(supply, demand)
            if traded > 0 {
                for (i, m) in members.enumerated() {
                    // The side that is short trades all of it; the other its share.
                    sold[i] = supply <= demand ? m.surplus : m.surplus * (traded / supply)
                    bought[i] = demand <= supply ? m.deficit : m.deficit * (traded / demand)
                }
            }
        case .priority:
            let sellers = members.indices.filter { members[$0].surplus > 0 && (members[$0].order?.ask ?? price) <= price }
                .sorted { (members[$0].order?.ask ?? price, members[$0].cups) < (members[$1].order?.ask ?? price, members[$1].cups) }
            let buyers = members.indices.filter { members[$0].deficit > 0 && (members[$0].order?.bid ?? price) >= price }
                .sorted { (-(members[$0].order?.bid ?? price), members[$0].cups) < (-(members[$1].order?.bid ?? price), members[$1].cups) }
            let traded = min(sellers.reduce(0) { $0 + members[$1].surplus }, buyers.reduce(0) { $0 + members[$1].deficit })
            func fill(_ order: [Int], _ amount: (Int) -> Double, into result: inout [Double]) {
                var left = traded
                for i in order where left > 0 {
                    let take = min(amount(i), left)
                    result[i] = take
                    left -= take
                }
            }
            fill(sellers, { members[$0].surplus }, into: &sold)
            fill(buyers, { members[$0].deficit }, into: &bought)
        }
        let results = members.enumerated().map { i, m in
            Result(
                cups: m.cups, bought: bought[i], sold: sold[i], value: price * (sold[i] - bought[i]),
                gridImport: max(0, m.deficit - bought[i]), gridExport: max(0, m.surplus - sold[i]))
        }
        return Clearing(price: price, traded: sold.reduce(0, +), members: results)
    }
}
