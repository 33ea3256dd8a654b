import Foundation
import Yams

// The flow as a graph: unique ids, wires to nodes that exist, no cycles.
extension FlowReader {
    mutating func checkGraph(_ nodes: [NodeDefinition]) {
        var byID: [String: NodeDefinition] = [:]
        for node in nodes where !node.id.isEmpty {
            if let first = byID[node.id] {
                error(node.location, "duplicate node id '\(node.id)' (first used at line \(first.location.line))")
            } else {
                byID[node.id] = node
            }
        }
        var fed: Set<String> = []
        for node in nodes {
            for (port, targets) in node.wires.sorted(by: { $0.key < $1.key }) {
                for target in targets {
                    if byID[target.node] == nil {
                        let closest = Suggestion.closest(to: target.node, among: byID.keys.sorted())
                        let hint = closest.map { " (did you mean '\($0)'?)" } ?? ""
                        error(target.location, "'\(node.id)' is wired to '\(target.node)', which is not a node of this flow\(hint)")
                        // The node it was meant for is then not reported as unfed as well.
                        if let closest { fed.insert(closest) }
                    } else if let spec = registry.spec(byID[target.node]!.type), !spec.takesInput {
                        error(target.location, "'\(node.id)' is wired to '\(target.node)', a \(spec.type) node, which takes no input")
                    } else {
                        if port == NodeDefinition.outPort, byID[target.node]?.type == "store.readings", registry.spec(node.type)?.carriesReadings == false {
                            warning(
                                target.location,
                                "'\(node.id)' (\(node.type)) sends messages without readings, which '\(target.node)' (store.readings) cannot store: each would go to the dead letters (map them with a 'readings' node first)")
                        }
                        fed.insert(target.node)
                    }
                }
            }
        }
        for node in nodes where !node.id.isEmpty && !fed.contains(node.id) {
            if let spec = registry.spec(node.type), spec.takesInput {
                error(node.location, "node '\(node.id)' (\(node.type)) takes input, but no node is wired to it (add '\(node.id)' to another node's 'to')")
            }
        }
        checkCycles(nodes, byID: byID)
    }

    mutating func checkCycles(_ nodes: [NodeDefinition], byID: [String: NodeDefinition]) {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var stack: [String] = []
        var reported: Set<String> = []
        func visit(_ id: String, _ reader: inout FlowReader) {
            marks[id] = .visiting
            stack.append(id)
            let node = byID[id]!
            for (port, targets) in node.wires.sorted(by: { $0.key < $1.key }) {
                for target in targets where byID[target.node] != nil {
                    switch marks[target.node] {
                    case .visiting?:
                        let cycle = stack.drop(while: { $0 != target.node }) + [target.node]
                        let key = "\(id)>\(target.node)"
                        if reported.insert(key).inserted {
                            reader.error(target.location, "wiring '\(id)' to '\(target.node)' makes a cycle: \(cycle.joined(separator: " → "))")
                        }
                    case nil:
                        visit(target.node, &reader)
                    case .done?:
                        break
                    }
                }
            }
            stack.removeLast()
            marks[id] = .done
        }
        for node in nodes where byID[node.id] != nil && marks[node.id] == nil {
            visit(node.id, &self)
        }
    }
}
