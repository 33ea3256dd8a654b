import CGLPK
import Foundation
import Synchronization

/// A linear (or mixed-integer) program to minimise, solved by GLPK: variables with bounds, some
/// integer or binary, linear constraints given sparsely. Built up in Swift, then handed to GLPK
/// whole (`solve`), so nothing of GLPK's state outlives a call.
public struct LinearProgram: Sendable {
    public struct Variable: Hashable, Sendable {
        public let index: Int
    }

    public enum Kind: Sendable {
        case continuous, integer, binary
    }

    struct Column: Sendable {
        var lower: Double
        var upper: Double?
        var cost: Double
        var kind: Kind
        var name: String
    }

    struct Row: Sendable {
        var terms: [(Int, Double)]
        var lower: Double?
        var upper: Double?
    }

    var columns: [Column] = []
    var rows: [Row] = []

    public init() {}

    public var variableCount: Int { columns.count }
    public var constraintCount: Int { rows.count }
    public var hasIntegers: Bool { columns.contains { $0.kind != .continuous } }

    /// A new variable in [lower, upper] (upper nil: unbounded above) costing `cost` per unit.
    public mutating func variable(_ name: String, lower: Double = 0, upper: Double? = nil, cost: Double = 0, kind: Kind = .continuous) -> Variable {
        columns.append(Column(lower: lower, upper: kind == .binary ? 1 : upper, cost: cost, kind: kind, name: name))
        return Variable(index: columns.count - 1)
    }

    public mutating func addCost(_ v: Variable, _ cost: Double) { columns[v.index].cost += cost }

    /// lower ≤ Σ coefficient·variable ≤ upper (nil: no bound on that side).
    public mutating func constrain(_ terms: [(Variable, Double)], lower: Double? = nil, upper: Double? = nil) {
        rows.append(Row(terms: terms.filter { $0.1 != 0 }.map { ($0.0.index, $0.1) }, lower: lower, upper: upper))
    }

    public mutating func equal(_ terms: [(Variable, Double)], _ value: Double) { constrain(terms, lower: value, upper: value) }

    public struct Solution: Sendable {
        public let values: [Double]
        public let objective: Double
        public subscript(_ v: Variable) -> Double { values[v.index] }
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// GLPK keeps global state (its environment, terminal hooks): one solve at a time.
    private static let solver = Mutex(())

    /// The optimum, or why there is none. `timeLimit` bounds the MIP search (GLPK then returns the
    /// best integer solution found, if any).
    public func solve(timeLimit: Duration = .seconds(10), writingLP path: String? = nil) throws(Failure) -> Solution {
        try Self.solver.withLock { _ throws(Failure) -> Solution in
            glp_term_out(GLP_OFF)
            guard let p = glp_create_prob() else { throw Failure(description: "GLPK could not create a problem") }
            defer { glp_delete_prob(p) }
            glp_set_obj_dir(p, GLP_MIN)
            if !columns.isEmpty { glp_add_cols(p, Int32(columns.count)) }
            for (j, c) in columns.enumerated() {
                let col = Int32(j + 1)
                let type: Int32 = c.upper.map { $0 == c.lower ? GLP_FX : GLP_DB } ?? GLP_LO
                glp_set_col_bnds(p, col, type, c.lower, c.upper ?? 0)
                glp_set_obj_coef(p, col, c.cost)
                switch c.kind {
                case .continuous: break
                case .integer: glp_set_col_kind(p, col, GLP_IV)
                case .binary: glp_set_col_kind(p, col, GLP_BV)
                }
            }
            if !rows.isEmpty { glp_add_rows(p, Int32(rows.count)) }
            var ia: [Int32] = [0], ja: [Int32] = [0], ar: [Double] = [0]
            for (i, r) in rows.enumerated() {
                let row = Int32(i + 1)
                let type: Int32 =
                    switch (r.lower, r.upper) {
                    case (nil, nil): GLP_FR
                    case (.some, nil): GLP_LO
                    case (nil, .some): GLP_UP
                    case (.some(let l), .some(let u)): l == u ? GLP_FX : GLP_DB
                    }
                glp_set_row_bnds(p, row, type, r.lower ?? 0, r.upper ?? 0)
                // GLPK refuses a column twice in a row: coefficients of the same variable are summed.
                var merged: [Int: Double] = [:]
                for (j, a) in r.terms { merged[j, default: 0] += a }
                for (j, a) in merged.sorted(by: { $0.key < $1.key }) where a != 0 {
                    ia.append(row)
                    ja.append(Int32(j + 1))
                    ar.append(a)
                }
            }
            glp_load_matrix(p, Int32(ar.count - 1), &ia, &ja, &ar)
            if let path { _ = glp_write_lp(p, nil, path) }

            if hasIntegers {
                var parm = glp_iocp()
                glp_init_iocp(&parm)
                parm.presolve = GLP_ON
                parm.msg_lev = GLP_MSG_OFF
                parm.tm_lim = Int32(clamping: timeLimit.components.seconds * 1000 + timeLimit.components.attoseconds / 1_000_000_000_000_000)
                let rc = glp_intopt(p, &parm)
                let status = glp_mip_status(p)
                guard status == GLP_OPT || status == GLP_FEAS else {
                    throw Failure(description: "GLPK found no solution (glp_intopt \(rc), status \(status))")
                }
                return Solution(values: (0..<columns.count).map { glp_mip_col_val(p, Int32($0 + 1)) }, objective: glp_mip_obj_val(p))
            }
            var parm = glp_smcp()
            glp_init_smcp(&parm)
            parm.presolve = GLP_ON
            parm.msg_lev = GLP_MSG_OFF
            let rc = glp_simplex(p, &parm)
            let status = glp_get_status(p)
            guard rc == 0, status == GLP_OPT else { throw Failure(description: "GLPK found no optimum (glp_simplex \(rc), status \(status))") }
            return Solution(values: (0..<columns.count).map { glp_get_col_prim(p, Int32($0 + 1)) }, objective: glp_get_obj_val(p))
        }
    }
}
